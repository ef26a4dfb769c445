// Builds a wasi:http test component: node build.mjs <out.wasm> [handler.js, default echo.js]
// StarlingMonkey (inside componentize-js) implements wasi:http/incoming-handler@0.2.10 for a JavaScript fetch
// handler. jco ships the WASI WIT of 0.2.12; the same packages under the version 0.2.10 describe what it implements.
import { componentize } from "@bytecodealliance/componentize-js";
import { _setPreopens } from "@bytecodealliance/preview2-shim/filesystem";
import { mkdir, readFile, readdir, rename, rm, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const [out, source] = process.argv.slice(2);
if (!out) {
  console.error("usage: node build.mjs <out.wasm> [handler.js]");
  process.exit(2);
}
// componentize-js reads the WIT through a WASI guest; preview2-shim 0.26 starts that guest with no preopens.
_setPreopens({ "/": "/" });

const here = dirname(fileURLToPath(import.meta.url));
const builtin = resolve(here, "../node_modules/@bytecodealliance/jco/lib/wit/builtin/0.2.12");
const wit = resolve(`${out}.wit`);
await rm(wit, { recursive: true, force: true });
for (const pkg of await readdir(builtin)) {
  const text = await readFile(resolve(builtin, pkg, "package.wit"), "utf8");
  await mkdir(resolve(wit, "deps", pkg), { recursive: true });
  await writeFile(resolve(wit, "deps", pkg, "package.wit"), text.replaceAll("@0.2.12", "@0.2.10"));
}
await writeFile(resolve(wit, "world.wit"), await readFile(resolve(here, "world.wit")));

const { component } = await componentize({
  sourcePath: source ? resolve(source) : resolve(here, "echo.js"),
  witPath: wit,
  worldName: "echo",
});
await writeFile(`${out}.tmp`, component);
await rm(wit, { recursive: true, force: true });
await rename(`${out}.tmp`, out);
