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
# The demo as a wasm-layer image (no rootfs; the shim reads the module from the image's layer through containerd's
# API). containerd before 1.6.25/1.7.7 refuses to import it; then that series is left out.
OCI_IMAGE=ghcr.io/containerd/runwasi/wasi-demo-oci:latest
[ -f "$images/demo-oci.tar" ] || dotnet run --project "$repo/tools/ImageBuilder" -c Release -v:q -- demo-oci \
  --wasm "$out/wasm/wasi-demo-app.wasm" --output "$images/demo-oci.tar" >&2
kinds=(wasm runc)
if ctr_ images import --all-platforms "$images/demo-oci.tar" >/dev/null 2>&1; then
  kinds=(wasm oci runc)
else
  log "containerd $version refuses wasm-layer images: the wasm-layer series is left out (CONTAINERD_VERSION=1.7 has it)"
fi

[ -n "${WASM_BEFORE_BIN:-}" ] && kinds+=(before)
has() { [[ " ${kinds[*]} " == *" $1 "* ]]; }

time_run() { # prints milliseconds of one `ctr run --rm`
  local start
  start=$EPOCHREALTIME
  ctr_ run --rm "$@" >/dev/null 2>&1
  awk -v s="$start" -v e="$EPOCHREALTIME" 'BEGIN {printf "%.1f", (e - s) * 1000}'
}

# One warm-up of each: the first run pays for snapshot unpacking, page cache and the module's compilation.
time_run --runtime "$WASM_RUNTIME" "$DEMO_IMAGE" warm-w /wasi-demo-app.wasm echo hi >/dev/null
time_run "$BUSYBOX_IMAGE" warm-r echo hi >/dev/null
if has oci; then time_run --runtime "$WASM_RUNTIME" "$OCI_IMAGE" warm-o wasi-demo-oci.wasm echo hi >/dev/null; fi
if has before; then time_run --runtime "$BEFORE_RUNTIME" "$DEMO_IMAGE" warm-b /wasi-demo-app.wasm echo hi >/dev/null; fi

wasm=() oci=() runc=() before=()
for i in $(seq "$rounds"); do
  w=$(time_run --runtime "$WASM_RUNTIME" "$DEMO_IMAGE" "w$i" /wasi-demo-app.wasm echo hi)
  o=""
  if has oci; then o=$(time_run --runtime "$WASM_RUNTIME" "$OCI_IMAGE" "o$i" wasi-demo-oci.wasm echo hi); oci+=("$o"); fi
  b=""
  if has before; then b=$(time_run --runtime "$BEFORE_RUNTIME" "$DEMO_IMAGE" "b$i" /wasi-demo-app.wasm echo hi); before+=("$b"); fi
  r=$(time_run "$BUSYBOX_IMAGE" "r$i" echo hi)
  wasm+=("$w"); runc+=("$r")
  log "round $i: wasm ${w} ms,${o:+ wasm-layer image $o ms,}${b:+ before $b ms,} runc ${r} ms"
done
note="$(machine_note) rounds=$rounds"
echo "start latency: $note"
for kind in "${kinds[@]}"; do
  declare -n samples=$kind
  med=$(printf '%s\n' "${samples[@]}" | median)
  p10=$(printf '%s\n' "${samples[@]}" | percentile 10); p90=$(printf '%s\n' "${samples[@]}" | percentile 90)
  case $kind in
    wasm) label="wasm demo echo (wasmtime shim)" ;;
    oci) label="wasm-layer demo echo (wasmtime)" ;;
    runc) label="busybox echo (runc)" ;;
    before) label="wasm demo echo (WASM_BEFORE_BIN)" ;;
  esac
  printf 'ctr run --rm, %-32s median %7s ms   p10 %7s   p90 %7s\n' "$label" "$med" "$p10" "$p90"
  json_entry "start-latency $kind median" ms "$med" "$note samples=$(IFS=,; echo "${samples[*]}")"
  json_entry "start-latency $kind p10" ms "$p10" "$note"
  json_entry "start-latency $kind p90" ms "$p90" "$note"
  unset -n samples
done
wm=$(printf '%s\n' "${wasm[@]}" | median); rm_=$(printf '%s\n' "${runc[@]}" | median)
awk -v w="$wm" -v r="$rm_" 'BEGIN {printf "ratio wasm/runc (medians): %.2f\n", w / r}'
if has before; then
  bm=$(printf '%s\n' "${before[@]}" | median)
  awk -v w="$wm" -v b="$bm" 'BEGIN {printf "ratio wasm/before (medians): %.2f\n", w / b}'
fi
if has oci; then
  om=$(printf '%s\n' "${oci[@]}" | median)
  awk -v w="$om" -v r="$rm_" 'BEGIN {printf "ratio wasm-layer/runc (medians): %.2f\n", w / r}'
fi
json_write "$results/start-latency.json"
