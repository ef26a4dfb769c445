#!/usr/bin/env bash
# Component start: `ctr run --rm` of the hello WASI 0.2 command component (tools/components/hello, a 12.7 MB
# componentize-js component) from a plain image, cold (the first run compiles it) and warm (the cached artifact is
# memory-mapped), against the preview 1 demo module warm, interleaved round by round on one private containerd with
# a cache folder of its own. Prints each sample and the medians. Not a timed test: run it by hand.
#
#   bench/components/run.sh [rounds]        (default 10; CONTAINERD_VERSION=1.6|1.7|2, default 1.6)
set -euo pipefail
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
rounds="${1:-10}"

bench_build
make -C "$repo" --no-print-directory components test-image OUT="$out" >&2
cache="$(mktemp -d /tmp/bench-components.XXXXXX)"
CONTAINERD_ENV="CONTAINERD_SHIM_WASMTIME_CACHE=$cache"
start_containerd
trap 'stop_containerd; rm -rf "$cache"' EXIT
ctr_ images import "$out/images/hello-component.tar" >/dev/null
COMPONENT_IMAGE=localhost/runwasi-dotnet/hello-component:latest

time_run() { # prints milliseconds of one `ctr run --rm`
  local start
  start=$EPOCHREALTIME
  ctr_ run --rm "$@" >/dev/null 2>&1
  awk -v s="$start" -v e="$EPOCHREALTIME" 'BEGIN {printf "%.1f", (e - s) * 1000}'
}

log "load before: $(uptime)"
cold=$(time_run --runtime "$WASM_RUNTIME" "$COMPONENT_IMAGE" cold-c /hello.wasm)
time_run --runtime "$WASM_RUNTIME" "$DEMO_IMAGE" warm-d /wasi-demo-app.wasm echo hi >/dev/null
echo "component cold (compile + store the artifact): $cold ms"
comp=() demo=()
for i in $(seq "$rounds"); do
  comp+=("$(time_run --runtime "$WASM_RUNTIME" "$COMPONENT_IMAGE" "c-$i" /hello.wasm)")
  demo+=("$(time_run --runtime "$WASM_RUNTIME" "$DEMO_IMAGE" "d-$i" /wasi-demo-app.wasm echo hi)")
  echo "round $i: component ${comp[-1]} ms, module ${demo[-1]} ms"
done
mc=$(printf '%s\n' "${comp[@]}" | median)
md=$(printf '%s\n' "${demo[@]}" | median)
echo "median warm: component $mc ms, preview 1 module $md ms, ratio $(awk -v a="$mc" -v b="$md" 'BEGIN {printf "%.2f", a / b}')"
echo "artifacts in the cache folder (bytes): $(find "$cache" -type f -printf "%s " )"
log "load after: $(uptime)"
