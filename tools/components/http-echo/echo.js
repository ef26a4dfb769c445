// Echo handler for the wasi:http server tests: the response names the method, the path (with query), the
// x-echo request header, and then repeats the request body byte for byte.
addEventListener("fetch", (event) => event.respondWith(echo(event.request)));

async function echo(request) {
  const url = new URL(request.url);
  const body = new Uint8Array(await request.arrayBuffer());
  const head = new TextEncoder().encode(
    `method=${request.method}\npath=${url.pathname}${url.search}\nx-echo=${request.headers.get("x-echo") ?? ""}\n\n`);
  const out = new Uint8Array(head.length + body.length);
  out.set(head, 0);
  out.set(body, head.length);
  return new Response(out, {
    status: 200,
    headers: { "content-type": "text/plain", "x-echo-method": request.method },
  });
}
