// The hello command component. Args (after argv[0]) are words; these do something:
//   exit=N    exit with status N (0 and 1 through wasi:cli/exit, others through exit-with-code)
//   cat=PATH  print the file PATH, found through the preopened directories
//   env=NAME  print NAME=value from the environment
//   sleep=S   sleep S seconds in a WASI 0.2 host call (a monotonic-clock pollable's block), which a kill cannot wake
// Everything else is only echoed. Output goes through console.log (wasi:cli/stdout).
import { getArguments, getEnvironment } from "wasi:cli/environment@0.2.12";
import { exit, exitWithCode } from "wasi:cli/exit@0.2.12";
import { getDirectories } from "wasi:filesystem/preopens@0.2.12";
import { subscribeDuration } from "wasi:clocks/monotonic-clock@0.2.12";

function readFile(path) {
  // The longest preopen that is a prefix of the path holds the file.
  let best = null;
  for (const [descriptor, guest] of getDirectories()) {
    const prefix = guest.endsWith("/") ? guest : guest + "/";
    if ((path === guest || path.startsWith(prefix)) && (best === null || guest.length > best[1].length)) {
      best = [descriptor, guest];
    }
  }
  if (best === null) {
    throw new Error(`no preopened directory holds ${path}`);
  }
  const relative = path.slice(best[1].length).replace(/^\/+/, "") || ".";
  const file = best[0].openAt({ symlinkFollow: true }, relative, {}, { read: true });
  const chunks = [];
  let offset = 0n;
  for (;;) {
    const [bytes, eof] = file.read(65536n, offset);
    chunks.push(...bytes);
    offset += BigInt(bytes.length);
    if (eof || bytes.length === 0) {
      break;
    }
  }
  return new TextDecoder().decode(new Uint8Array(chunks));
}

export const run = {
  run() {
    const args = getArguments();
    console.log(`hello from a component: args=${JSON.stringify(args)}`);
    const env = new Map(getEnvironment());
    let code = 0;
    for (const arg of args.slice(1)) {
      const eq = arg.indexOf("=");
      const [key, value] = eq < 0 ? [arg, ""] : [arg.slice(0, eq), arg.slice(eq + 1)];
      if (key === "env") {
        console.log(`${value}=${env.get(value) ?? ""}`);
      } else if (key === "cat") {
        try {
          console.log(`${value}: ${readFile(value).trimEnd()}`);
        } catch (e) {
          console.error(`cat ${value}: ${e?.payload ?? e}`);
          code = code || 2;
        }
      } else if (key === "sleep") {
        // One blocking host call: setTimeout would only run after run() returns.
        console.log(`sleeping ${value} s`);
        subscribeDuration(BigInt(Math.round(Number.parseFloat(value) * 1e9))).block();
        console.log("slept");
      } else if (key === "exit") {
        code = Number.parseInt(value, 10) || 0;
      }
    }
    if (code === 0) {
      exit({ tag: "ok" });
    } else if (code === 1) {
      exit({ tag: "err" });
    } else {
      exitWithCode(code);
    }
  },
};
