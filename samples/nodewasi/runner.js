'use strict';
// Runs one container's WASI module with Node.js's built-in WASI. The shim starts `node runner.js` at task Create
// with the container's stdio on fds 0-2 and a pipe on fd 3; this script blocks reading fd 3 until task Start, when
// the shim writes the run configuration (JSON) and closes the pipe. A pipe closed with nothing written means the
// task was deleted before it started: exit without running anything.
const fs = require('node:fs');
const { WASI } = require('node:wasi');

function readGate() {
  const chunks = [];
  const buffer = Buffer.alloc(64 * 1024);
  for (;;) {
    let n;
    try {
      n = fs.readSync(3, buffer, 0, buffer.length, null);
    } catch (e) {
      if (e.code === 'EAGAIN' || e.code === 'EINTR') continue;
      throw e;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buffer.subarray(0, n)));
  }
  fs.closeSync(3);
  return Buffer.concat(chunks).toString('utf8');
}

const text = readGate();
if (text.length === 0) {
  process.exit(0);
}
// { module: host path, args: [argv0, ...], env: { NAME: value }, preopens: { guestPath: hostPath } }
const config = JSON.parse(text);
const wasi = new WASI({
  version: 'preview1',
  args: config.args,
  env: config.env,
  preopens: config.preopens,
  returnOnExit: true,
});

let code;
try {
  const module = new WebAssembly.Module(fs.readFileSync(config.module));
  const instance = new WebAssembly.Instance(module, wasi.getImportObject());
  code = wasi.start(instance);
} catch (e) {
  // A trap or a module that does not link: reported on the container's stderr, exit code 134 as the
  // Wasmtime shim reports a trap.
  process.stderr.write(`nodewasi: ${config.args[0]}: ${e && e.message ? e.message : e}\n`);
  code = 134;
}
process.exitCode = code;
