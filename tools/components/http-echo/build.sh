#!/usr/bin/env bash
# Builds the wasi:http echo component: build.sh [output.wasm] (default: <repo>/out/components/http-echo.wasm).
# Needs `npm install` in tools/components first (it runs offline against the npm registry mirror).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tools=$(dirname "$here")
repo=$(cd "$tools/../.." && pwd)
out=${1:-$repo/out/components/http-echo.wasm}
builtin=$tools/node_modules/@bytecodealliance/jco/lib/wit/builtin/0.2.12
[ -d "$builtin" ] || { echo "run npm install in $tools first" >&2; exit 1; }
# jco runs wasm-tools as wasm that sees only the current directory, so the assembled WIT lives under it.
cd "$here"
work=$(mktemp -d "$here/witbuild-XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/wit/deps" "$(dirname "$out")"
cp "$here/world.wit" "$work/wit/"
# jco ships the WIT of 0.2.12; StarlingMonkey implements 0.2.10, which has the same shape under the older version.
for pkg in cli clocks filesystem http io random sockets; do
  mkdir -p "$work/wit/deps/$pkg"
  sed 's/@0\.2\.12/@0.2.10/g' "$builtin/wasi-$pkg/package.wit" > "$work/wit/deps/$pkg/package.wit"
done

"$tools/node_modules/.bin/componentize-js" echo.js --wit "$(basename "$work")/wit" --world-name echo -o "$out"
echo "built $out"
