// Hostile handler for the wasi:http limit tests: /spin never returns (a busy loop in wasm code), /endless streams a
// body that never ends, /sleep waits 10 minutes in a poll (a timer: StarlingMonkey's event loop blocks in
// wasi:io/poll's poll on a monotonic-clock pollable), and anything else answers "ok" at once.
addEventListener("fetch", (event) => event.respondWith(handle(event.request)));

async function handle(request) {
  const path = new URL(request.url).pathname;
  if (path === "/spin") {
    for (;;) {
      // Nothing yields: only the host can stop this guest.
    }
  }
  if (path === "/sleep") {
    await new Promise((resolve) => setTimeout(resolve, 600_000));
    return new Response("slept\n", { status: 200, headers: { "content-type": "text/plain" } });
  }
  if (path === "/endless") {
    const body = new ReadableStream({
      pull(controller) {
        controller.enqueue(new Uint8Array(16384).fill(120));
      },
    });
    return new Response(body, { status: 200, headers: { "content-type": "application/octet-stream" } });
  }
  return new Response("ok\n", { status: 200, headers: { "content-type": "text/plain" } });
}
