#!/usr/bin/env bash
# Churn: container throughput with the stress tool (tools/Stress), Create → Start → Wait → Delete per task.
#
#   bench/churn/run.sh [count] [rounds]   (default 1000 tasks, 2 rounds; PARALLEL, default the number of cores;
#                                          CONTAINERD_VERSION=1.6|1.7|2, default 1.6; RESULTS=<dir>)
#
# Each round runs, one after the other on one private containerd: the demo echo under the wasmtime shim, busybox echo
# under io.containerd.runc.v2, then the wasmtime shim alone against the stress tool's mock of containerd's event
# endpoint (--mode shim). Interleaving the rounds lets machine noise hit each alike. The stress tool's JSON of every
# run is kept as $RESULTS/churn-<wasm|runc|mock>-<round>.json; the summary prints tasks/s and the ratios.
set -euo pipefail
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
count="${1:-1000}"
rounds="${2:-2}"
parallel="${PARALLEL:-$(nproc)}"

bench_build
stress_build
start_containerd
rootfs="$work/mock-rootfs"
mkdir -p "$rootfs"
cp "$out/wasm/wasi-demo-app.wasm" "$rootfs/"

# Warm-up: unpack both snapshots, fill the module compilation cache and the page cache.
ctr_ run --rm --runtime "$WASM_RUNTIME" "$DEMO_IMAGE" warm-w /wasi-demo-app.wasm echo hello >/dev/null
ctr_ run --rm "$BUSYBOX_IMAGE" warm-r echo hello >/dev/null

common=(--count "$count" --parallel "$parallel" --timeout 60)
rm -f "$results"/churn-*.json
for r in $(seq "$rounds"); do
  log "round $r/$rounds: wasm"
  stress_ "${common[@]}" --runtime "$WASM_RUNTIME" --image "$DEMO_IMAGE" --name "churn wasm" \
    --json-output "$results/churn-wasm-$r.json" -- /wasi-demo-app.wasm echo hello
  log "round $r/$rounds: runc"
  stress_ "${common[@]}" --runtime "$RUNC_RUNTIME" --image "$BUSYBOX_IMAGE" --name "churn runc" \
    --json-output "$results/churn-runc-$r.json" -- echo hello
  log "round $r/$rounds: wasm shim alone, mock events endpoint"
  stress_ "${common[@]}" --mode shim --shim "$out/bin/containerd-shim-wasmtime-v1" --rootfs "$rootfs" --name "churn mock" \
    --json-output "$results/churn-mock-$r.json" -- /wasi-demo-app.wasm echo hello
done

value() { # value FILE NAME: one entry's value from a stress JSON file
  grep -A2 "\"name\": \"$2\"" "$1" | sed -n 's/.*"value": \([0-9.eE+-]*\).*/\1/p' | head -1
}
echo "churn: $(machine_note) count=$count parallel=$parallel rounds=$rounds"
for r in $(seq "$rounds"); do
  w=$(value "$results/churn-wasm-$r.json" "churn wasm tasks/s")
  c=$(value "$results/churn-runc-$r.json" "churn runc tasks/s")
  m=$(value "$results/churn-mock-$r.json" "churn mock tasks/s")
  awk -v r="$r" -v w="$w" -v c="$c" -v m="$m" \
    'BEGIN {printf "round %s: wasm %.1f tasks/s, runc %.1f tasks/s, ratio wasm/runc %.2f; shim alone (mock) %.1f tasks/s\n", r, w, c, w / c, m}'
done
