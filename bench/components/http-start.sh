#!/usr/bin/env bash
# wasi:http proxy start: `ctr run -d` of the http-echo component (tools/components/http-echo, ~13 MB from
# componentize-js) from a plain image until it answers a GET inside the container's network namespace, cold (the
# cache folder emptied first, so the start compiles and stores the artifact) and warm (the cached artifact is
# memory-mapped), interleaved round by round on one private containerd with a cache folder of its own. Prints each
# sample and the medians. Not a timed test: run it by hand.
#
#   bench/components/http-start.sh [rounds]        (default 5; CONTAINERD_VERSION=1.6|1.7|2, default 1.6)
set -euo pipefail
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
rounds="${1:-5}"

bench_build
make -C "$repo" --no-print-directory components OUT="$out" >&2
image_tar="$images/http-echo.tar"
if [ ! -f "$image_tar" ] || [ "$out/components/http-echo.wasm" -nt "$image_tar" ]; then
  dotnet run --project "$repo/tools/ImageBuilder" -c Release -v:q -- build --name bench.local/http-echo:latest \
    --file "http-echo.wasm=$out/components/http-echo.wasm:755" --entrypoint /http-echo.wasm --output "$image_tar" >&2
fi
cache="$(mktemp -d /tmp/bench-http-start.XXXXXX)"
CONTAINERD_ENV="CONTAINERD_SHIM_WASMTIME_CACHE=$cache"
start_containerd
trap 'stop_containerd; rm -rf "$cache"' EXIT
ctr_ images import "$image_tar" >/dev/null

time_start() { # prints milliseconds from `ctr run -d` to the first answer, then ends the container
  local id=$1 start pid
  start=$EPOCHREALTIME
  ctr_ run -d --runtime "$WASM_RUNTIME" --env WASMTIME_HTTP_PROXY_SOCKET_ADDR=127.0.0.1:8080 \
    bench.local/http-echo:latest "$id" /http-echo.wasm >/dev/null
  pid=$(ctr_ task ls | awk -v id="$id" '$1 == id {print $2}')
  until nsenter --net="/proc/$pid/ns/net" curl -sf -o /dev/null http://127.0.0.1:8080/; do sleep 0.02; done
  awk -v s="$start" -v e="$EPOCHREALTIME" 'BEGIN {printf "%.1f", (e - s) * 1000}'
  ctr_ task kill -s SIGKILL "$id" >/dev/null
  for _ in $(seq 100); do ctr_ task delete "$id" >/dev/null 2>&1 && break; sleep 0.1; done
  ctr_ containers delete "$id" >/dev/null
}

log "load before: $(uptime)"
time_start warm-up >/dev/null
cold=() warm=()
for i in $(seq "$rounds"); do
  find "$cache" -type f -delete
  cold+=("$(time_start "cold-$i")")
  warm+=("$(time_start "warm-$i")")
  echo "round $i: cold ${cold[-1]} ms, warm ${warm[-1]} ms"
done
mc=$(printf '%s\n' "${cold[@]}" | median)
mw=$(printf '%s\n' "${warm[@]}" | median)
echo "median: cold $mc ms, warm $mw ms, cold / warm $(awk -v a="$mc" -v b="$mw" 'BEGIN {printf "%.1f", a / b}')"
echo "artifact in the cache folder (bytes): $(find "$cache" -type f -printf "%s " )"
log "load after: $(uptime)"
