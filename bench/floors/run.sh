#!/usr/bin/env bash
# Floors: what a container costs at the very least, the figures every other benchmark is read against.
#
#   bench/floors/run.sh [rounds]     (default 20; CONTAINERD_VERSION=1.6|1.7|2, default 1.6; RESULTS=<dir>)
#
# Interleaved round by round, each timed from this shell:
#   runc ctr run --rm     `ctr run --rm` of a static no-op Linux binary under runc: containerd's own per-container cost
#   wasm ctr run --rm     the same no-op program as a wasm module under our shim
#   instance process      spawning and reaping one instance process of ours (the shim executable in its instance role,
#                         `--instance <id> <bundle> <rootfs>`) that runs the no-op module: our per-container minimum
#                         without containerd, the shim server or any RPC; fd 3 (control pipe) goes to /dev/null and
#                         fd 4 (start pipe) reads one byte from a file, so the process starts the program at once
#   static process        spawning and reaping the static no-op Linux binary: the cost of fork+exec+wait itself
# Writes $RESULTS/floors.json (median, p10 and p90 per floor, samples in "extra").
set -euo pipefail
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
rounds="${1:-20}"

bench_build
start_containerd

# A bundle for the instance process: the no-op module in a rootfs, a spec whose process runs it.
inst="$work/instance"
mkdir -p "$inst/rootfs"
cp "$images/noop.wasm" "$inst/rootfs/noop.wasm"
cat > "$inst/config.json" <<JSON
{"ociVersion": "1.1.0", "process": {"args": ["/noop.wasm"], "cwd": "/", "env": ["PATH=/usr/bin:/bin"], "user": {"uid": 0, "gid": 0}},
 "root": {"path": "$inst/rootfs"}, "linux": {}}
JSON
printf x > "$inst/start-byte"
shim="$out/bin/containerd-shim-wasmtime-v1"

time_ms() { # time_ms CMD... : wall milliseconds of one run; fails the script when the command fails
  local start end
  start=$EPOCHREALTIME
  "$@" >/dev/null 2>"$work/last.err" || { log "failed: $* ($(cat "$work/last.err"))"; return 1; }
  end=$EPOCHREALTIME
  awk -v s="$start" -v e="$end" 'BEGIN {printf "%.2f", (e - s) * 1000}'
}
# cpu_ms CMD... : user+system CPU milliseconds the command's process used (bash's `time`), which on a loaded machine
# says more than the wall time about how many such processes per second the cores could spawn.
cpu_ms() {
  local TIMEFORMAT='%3U %3S' t
  t=$( { time "$@" >/dev/null 2>"$work/last.err"; } 2>&1 ) || { log "failed: $*"; return 1; }
  awk -v t="$t" 'BEGIN {split(t, a, " "); printf "%.1f", (a[1] + a[2]) * 1000}'
}
instance() { "$shim" --instance "floor-$1" "$inst" "$inst/rootfs" 3>/dev/null 4<"$inst/start-byte"; }

# Warm-up: snapshot unpack, page cache, and the module's first compilation into the on-disk cache.
ctr_ run --rm "$NOOP_IMAGE" warm-r >/dev/null
ctr_ run --rm --runtime "$WASM_RUNTIME" "$NOOP_WASM_IMAGE" warm-w >/dev/null
instance warm

declare -a runc wasm proc static proc_cpu static_cpu
for i in $(seq "$rounds"); do
  runc+=("$(time_ms ctr_ run --rm "$NOOP_IMAGE" "r$i")")
  wasm+=("$(time_ms ctr_ run --rm --runtime "$WASM_RUNTIME" "$NOOP_WASM_IMAGE" "w$i")")
  proc+=("$(time_ms instance "$i")")
  static+=("$(time_ms "$images/noop")")
  proc_cpu+=("$(cpu_ms instance "c$i")")
  static_cpu+=("$(cpu_ms "$images/noop")")
  log "round $i: runc ctr run ${runc[-1]} ms, wasm ctr run ${wasm[-1]} ms, instance process ${proc[-1]} ms (cpu ${proc_cpu[-1]}), static process ${static[-1]} ms (cpu ${static_cpu[-1]})"
done

note="$(machine_note) rounds=$rounds"
report() { # report LABEL KEY SAMPLES...   (CPU figures: KEY ends in "cpu")
  local label="$1" key="$2"; shift 2
  local med p10 p90
  med=$(printf '%s\n' "$@" | median); p10=$(printf '%s\n' "$@" | percentile 10); p90=$(printf '%s\n' "$@" | percentile 90)
  printf '%-48s median %8s ms   p10 %8s   p90 %8s\n' "$label" "$med" "$p10" "$p90"
  local samples; samples="$(IFS=,; echo "$*")"
  json_entry "floor $key median" ms "$med" "$note samples=$samples"
  json_entry "floor $key p10" ms "$p10" "$note"
  json_entry "floor $key p90" ms "$p90" "$note"
}
echo "floors: $note"
report "ctr run --rm, static no-op, runc" "runc ctr run" "${runc[@]}"
report "ctr run --rm, no-op module, wasmtime shim" "wasm ctr run" "${wasm[@]}"
report "instance process spawn+reap, no-op module" "instance process" "${proc[@]}"
report "static no-op process spawn+reap" "static process" "${static[@]}"
report "instance process, CPU time (user+sys)" "instance process cpu" "${proc_cpu[@]}"
report "static no-op process, CPU time (user+sys)" "static process cpu" "${static_cpu[@]}"
json_write "$results/floors.json"
