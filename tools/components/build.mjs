// Builds one test component: node build.mjs <source.js> <world.wit> <out.wasm> [world-name]
// The world's WASI dependencies come from the WIT packages jco ships (WASI 0.2.12), assembled next to the output,
// so the repository keeps only its own worlds.
import { componentize } from "@bytecodealliance/componentize-js";
import { _setPreopens } from "@bytecodealliance/preview2-shim/filesystem";
import { cp, mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const [source, world, out, worldName] = process.argv.slice(2);
if (!source || !world || !out) {
  console.error("usage: node build.mjs <source.js> <world.wit> <out.wasm> [world-name]");
  process.exit(2);
}
// componentize-js reads the WIT through a WASI guest; preview2-shim 0.26 starts that guest with no preopens.
_setPreopens({ "/": "/" });

const here = dirname(fileURLToPath(import.meta.url));
const builtin = resolve(here, "node_modules/@bytecodealliance/jco/lib/wit/builtin/0.2.12");
const wit = resolve(`${out}.wit`);
await rm(wit, { recursive: true, force: true });
await mkdir(resolve(wit, "deps"), { recursive: true });
await cp(resolve(world), resolve(wit, "world.wit"));
await cp(builtin, resolve(wit, "deps"), { recursive: true });

const { component } = await componentize({
  sourcePath: resolve(source),
  witPath: wit,
  worldName,
  // No fetch-event handler and no wasi:http imports: a plain command needs only WASI 0.2's CLI world.
  disableFeatures: ["http", "fetch-event"],
});
await writeFile(`${out}.tmp`, component);
await rm(wit, { recursive: true, force: true });
await (await import("node:fs/promises")).rename(`${out}.tmp`, out);
