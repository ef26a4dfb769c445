#!/usr/bin/env bash
# Start latency: `ctr run --rm` of the wasm demo (echo, under containerd-shim-wasmtime-v1) against `ctr run --rm`
# of busybox echo under runc, on the same private containerd, interleaved round by round so that machine noise
# hits both alike. Prints each sample, the medians and the ratio wasm/runc, and writes $RESULTS/start-latency.json
# (median, p10, p90 of each, samples in "extra"). Not a timed test: run it by hand or with `make bench`.
#
#   bench/start-latency/run.sh [rounds]        (default 20; CONTAINERD_VERSION=1.6|1.7|2, default 1.6; RESULTS=<dir>)
#
# It builds what it needs (make shims wasm, the images) and tears its containerd down on exit.
set -euo pipefail
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
rounds="${1:-20}"

bench_build
start_containerd

time_run() { # prints milliseconds of one `ctr run --rm`
  local start
  start=$EPOCHREALTIME
  ctr_ run --rm "$@" >/dev/null 2>&1
  awk -v s="$start" -v e="$EPOCHREALTIME" 'BEGIN {printf "%.1f", (e - s) * 1000}'
}

# One warm-up of each: the first run pays for snapshot unpacking, page cache and the module's compilation.
time_run --runtime "$WASM_RUNTIME" "$DEMO_IMAGE" warm-w /wasi-demo-app.wasm echo hi >/dev/null
time_run "$BUSYBOX_IMAGE" warm-r echo hi >/dev/null

wasm=() runc=()
for i in $(seq "$rounds"); do
  w=$(time_run --runtime "$WASM_RUNTIME" "$DEMO_IMAGE" "w$i" /wasi-demo-app.wasm echo hi)
  r=$(time_run "$BUSYBOX_IMAGE" "r$i" echo hi)
  wasm+=("$w"); runc+=("$r")
  log "round $i: wasm ${w} ms, runc ${r} ms"
done
note="$(machine_note) rounds=$rounds"
echo "start latency: $note"
for kind in wasm runc; do
  declare -n samples=$kind
  med=$(printf '%s\n' "${samples[@]}" | median)
  p10=$(printf '%s\n' "${samples[@]}" | percentile 10); p90=$(printf '%s\n' "${samples[@]}" | percentile 90)
  label="wasm demo echo (wasmtime shim)"; [ "$kind" = runc ] && label="busybox echo (runc)"
  printf 'ctr run --rm, %-32s median %7s ms   p10 %7s   p90 %7s\n' "$label" "$med" "$p10" "$p90"
  json_entry "start-latency $kind median" ms "$med" "$note samples=$(IFS=,; echo "${samples[*]}")"
  json_entry "start-latency $kind p10" ms "$p10" "$note"
  json_entry "start-latency $kind p90" ms "$p90" "$note"
  unset -n samples
done
wm=$(printf '%s\n' "${wasm[@]}" | median); rm_=$(printf '%s\n' "${runc[@]}" | median)
awk -v w="$wm" -v r="$rm_" 'BEGIN {printf "ratio wasm/runc (medians): %.2f\n", w / r}'
json_write "$results/start-latency.json"
