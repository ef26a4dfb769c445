#!/usr/bin/env bash
# The timeline of single warm `ctr run --rm` echos: busybox under runc, the demo as a plain image and as a wasm-layer
# image under the wasmtime shim. Merges, in time order and in milliseconds since ctr was started:
#   - process execs, forks and exits of the whole machine during the run (perf, sched tracepoints);
#   - the shim's own marks (RUNWASI_DOTNET_TRACE, set in containerd's environment: start, server, Task calls,
#     instance process phases);
#   - containerd's debug log.
# Not a benchmark (perf and the debug log cost time themselves): it shows where the time goes.
#
#   bench/warm-start/timeline.sh [runs per kind]   (default 1; CONTAINERD_VERSION=1.7|2, default 1.7)
set -euo pipefail
export CONTAINERD_VERSION="${CONTAINERD_VERSION:-1.7}"
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
runs="${1:-1}"
layered=ghcr.io/containerd/runwasi/wasi-demo-oci:latest

bench_build
[ -f "$images/demo-oci.tar" ] || dotnet run --project "$repo/tools/ImageBuilder" -c Release -v:q -- demo-oci \
  --wasm "$out/wasm/wasi-demo-app.wasm" --output "$images/demo-oci.tar" >&2
scratch="$(mktemp -d /tmp/warm-timeline.XXXXXX)"
trace="$scratch/trace"
CONTAINERD_ENV="${CONTAINERD_ENV:-} CONTAINERD_SHIM_WASMTIME_CACHE=$scratch/cache RUNWASI_DOTNET_TRACE=$trace"
CONTAINERD_ARGS="${CONTAINERD_ARGS---log-level debug}"
start_containerd
trap 'stop_containerd; rm -rf "$scratch"' EXIT
ctr_ images import --all-platforms "$images/demo-oci.tar" >/dev/null

run() { ctr_ run --rm "$@" >/dev/null; }
run --runtime "$WASM_RUNTIME" "$layered" warm-l wasi-demo-oci.wasm echo hi
run --runtime "$WASM_RUNTIME" "$DEMO_IMAGE" warm-p /wasi-demo-app.wasm echo hi
run "$BUSYBOX_IMAGE" warm-r echo hi

timeline() { # timeline KIND ID ARGS...: one traced run, printed
  local kind="$1" id="$2"; shift 2
  : >"$trace"
  local log_from
  log_from=$(wc -l <"$work/containerd.log")
  perf record -q -k mono -a -e sched:sched_process_exec,sched:sched_process_exit,sched:sched_process_fork \
    -o "$scratch/perf.data" 2>/dev/null &
  local perf_pid=$!
  sleep 0.5
  local offset start end
  offset=$(python3 -c 'import time; print(time.clock_gettime(time.CLOCK_REALTIME) - time.clock_gettime(time.CLOCK_MONOTONIC))')
  start=$EPOCHREALTIME
  ctr_ run --rm "$@" "$id" "${args[@]}" >/dev/null
  end=$EPOCHREALTIME
  sleep 0.3
  kill -INT "$perf_pid"; wait "$perf_pid" || true
  perf script -i "$scratch/perf.data" -F comm,pid,tid,time,event,trace 2>/dev/null >"$scratch/perf.txt"
  tail -n +"$((log_from + 1))" "$work/containerd.log" >"$scratch/containerd.txt"
  echo "== $kind: ctr run --rm $* $id ${args[*]} ($(awk -v s="$start" -v e="$end" 'BEGIN {printf "%.1f", (e - s) * 1000}') ms)"
  python3 - "$start" "$end" "$offset" "$scratch/perf.txt" "$trace" "$scratch/containerd.txt" <<'PY'
import re, sys, datetime
start, end, offset = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
events = []
# perf: "comm pid/tid [cpu]? time: event: details"
for line in open(sys.argv[4]):
    m = re.match(r'\s*(.+?)\s+(\d+)/(\d+)\s+([\d.]+):\s+(\S+):\s*(.*)', line)
    if not m:
        continue
    comm, pid, tid, t, ev, rest = m.groups()
    t = float(t) + offset
    ev = ev.replace('sched:sched_process_', '')
    if ev == 'exit' and pid != tid:
        continue  # thread exits: noise
    if ev == 'fork':
        cm = re.search(r'child_comm=(\S+) child_pid=(\d+)', rest)
        if cm is None or comm in ('perf',):
            continue
        # thread creation shows up as fork too; keep only process forks (child pid not a thread of the parent is
        # not knowable here), so show the forks of the processes we care about only
        if not re.match(r'(ctr|containerd|runc|containerd-shim|exe)', comm):
            continue
        rest = f'forks {cm.group(2)}'
    elif ev == 'exec':
        fm = re.search(r'filename=(\S+)', rest)
        rest = 'exec ' + (fm.group(1) if fm else rest)
    else:
        rest = 'exits'
    events.append((t, f'[proc] {comm} {pid}: {rest}'))
for line in open(sys.argv[5]):
    parts = line.split(' ', 2)
    if len(parts) == 3:
        events.append((float(parts[0]), f'[shim] pid {parts[1]}: {parts[2].strip()}'))
for line in open(sys.argv[6]):
    m = re.match(r'time="([^"]+)" level=(\w+) msg="((?:[^"\\]|\\.)*)"(.*)', line)
    if not m:
        continue
    ts, level, msg, rest = m.groups()
    frac = re.match(r'(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)', ts)
    base = datetime.datetime.fromisoformat(frac.group(1) + (frac.group(3) if frac.group(3) != 'Z' else '+00:00'))
    t = base.timestamp() + float(frac.group(2) or 0)
    extra = ' '.join(re.findall(r'(?:id|runtime|topic|namespace)=("[^"]*"|\S+)', rest))[:80]
    events.append((t, f'[containerd] {msg[:110]} {extra}'))
events.append((start, '[bench] ctr run starts'))
events.append((end, '[bench] ctr run returned'))
for t, what in sorted(events):
    if start - 0.001 <= t <= end + 0.2:
        print(f'{(t - start) * 1000:8.1f}  {what}')
PY
}
for i in $(seq "$runs"); do
  args=(echo hi); timeline "runc busybox" "tr$i" "$BUSYBOX_IMAGE"
  args=(/wasi-demo-app.wasm echo hi); timeline "wasm plain image, warm" "tp$i" --runtime "$WASM_RUNTIME" "$DEMO_IMAGE"
  args=(wasi-demo-oci.wasm echo hi); timeline "wasm-layer image, warm" "tl$i" --runtime "$WASM_RUNTIME" "$layered"
done
