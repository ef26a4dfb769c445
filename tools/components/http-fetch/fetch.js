// Outgoing-HTTP handler for the wasi:http server tests: fetches the URL named by the `url` query parameter (with
// the request's method and body, and an x-from header), and answers with the upstream's status and body, plus the
// upstream's x-upstream header. A failed fetch answers 502 with the error.
addEventListener("fetch", (event) => event.respondWith(relay(event.request)));

async function relay(request) {
  const target = new URL(request.url).searchParams.get("url");
  if (!target) {
    return new Response("no url\n", { status: 400 });
  }
  const init = { method: request.method, headers: { "x-from": "component" } };
  if (request.method !== "GET" && request.method !== "HEAD") {
    init.body = new Uint8Array(await request.arrayBuffer());
  }
  let upstream;
  try {
    upstream = await fetch(target, init);
  } catch (e) {
    return new Response(`fetch failed: ${e}\n`, { status: 502 });
  }
  const body = new Uint8Array(await upstream.arrayBuffer());
  return new Response(body, {
    status: upstream.status,
    headers: { "x-upstream": upstream.headers.get("x-upstream") ?? "" },
  });
}
