#!/usr/bin/env bash
# Shared mode side by side with normal mode and runc, in one run on one private containerd (issue 10):
#
#   bench/shared/run.sh [rounds] [churn-count] [density-count]     (defaults 20, 300, 1000; PARALLEL for churn,
#                                                                   default the number of cores; RESULTS=<dir>)
#   DAEMON_ENV="NAME=value …"   extra environment for containerd-wasmtimed, e.g. CONTAINERD_WASMTIMED_POOL=1100
#   BENCH_SKIP_MAKE=1           measure the binaries in $OUT/bin as they are
#   ONLY_START=1                stop after the start latency (part 1)
#
# 1. start latency: `ctr run --rm` of the demo echo under the shared-mode runtime (io.containerd.wasmtimed.v1), under
#    the normal-mode shim and of busybox echo under runc, interleaved round by round;
# 2. churn: the stress tool (Create → Start → Wait → Delete) through containerd for the same three, then the
#    shared-mode client shim and the normal-mode shim alone against the tool's mock event endpoint (--mode shim);
# 3. density: `density-count` demo `sleep` containers running at once in the daemon; the daemon's PSS growth over
#    its PSS with one container done (module compiled) divided by the instances is the memory each one adds.
# Writes $RESULTS/shared.json (benchmark-action format) and prints a summary. The daemon runs on a socket of its own
# under /tmp and is stopped, with every container and containerd, on exit.
set -euo pipefail
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
rounds="${1:-20}"
churn="${2:-300}"
density="${3:-1000}"
parallel="${PARALLEL:-$(nproc)}"
SHARED_RUNTIME=io.containerd.wasmtimed.v1

# BENCH_SKIP_MAKE=1 measures the binaries already in $OUT/bin (make would rebuild them after any source edit).
if [ "${BENCH_SKIP_MAKE:-}" = 1 ]; then make() { :; }; fi
bench_build
stress_build
daemon_dir="$(mktemp -d /tmp/bench-wtd.XXXXXX)"
export CONTAINERD_WASMTIMED_SOCKET="$daemon_dir/manager.sock"
CONTAINERD_ENV="${CONTAINERD_ENV:-} CONTAINERD_WASMTIMED_SOCKET=$CONTAINERD_WASMTIMED_SOCKET"
# shellcheck disable=SC2086 # DAEMON_ENV is a list of NAME=value words
env ${DAEMON_ENV:-} "$out/bin/containerd-wasmtimed" --socket "$CONTAINERD_WASMTIMED_SOCKET" 2>"$daemon_dir/daemon.log" &
daemon_pid=$!
stop_daemon() {
  set +e
  [ -n "${daemon_pid:-}" ] && kill "$daemon_pid" && wait "$daemon_pid"
  daemon_pid=""
  rm -rf "$daemon_dir"
}
trap stop_daemon EXIT
for _ in $(seq 100); do [ -S "$CONTAINERD_WASMTIMED_SOCKET" ] && break; sleep 0.1; done
[ -S "$CONTAINERD_WASMTIMED_SOCKET" ] || { log "containerd-wasmtimed did not start: $(cat "$daemon_dir/daemon.log")"; exit 1; }
start_containerd
trap 'stop_containerd; stop_daemon' EXIT
log "daemon: $(grep -o 'wasmtime engine: .*' "$daemon_dir/daemon.log")"

time_run() { # prints milliseconds of one `ctr run --rm`
  local start
  start=$EPOCHREALTIME
  ctr_ run --rm "$@" >/dev/null 2>&1
  awk -v s="$start" -v e="$EPOCHREALTIME" 'BEGIN {printf "%.1f", (e - s) * 1000}'
}
pss_kib() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }
threads() { awk '/^Threads:/ {print $2}' "/proc/$1/status"; }

# 1. Start latency. One warm-up each: snapshots, page cache, the module's compilation (and the on-disk cache).
time_run --runtime "$SHARED_RUNTIME" "$DEMO_IMAGE" warm-s /wasi-demo-app.wasm echo hi >/dev/null
time_run --runtime "$WASM_RUNTIME" "$DEMO_IMAGE" warm-w /wasi-demo-app.wasm echo hi >/dev/null
time_run "$BUSYBOX_IMAGE" warm-r echo hi >/dev/null
shared=() normal=() runc=()
for i in $(seq "$rounds"); do
  s=$(time_run --runtime "$SHARED_RUNTIME" "$DEMO_IMAGE" "s$i" /wasi-demo-app.wasm echo hi)
  w=$(time_run --runtime "$WASM_RUNTIME" "$DEMO_IMAGE" "w$i" /wasi-demo-app.wasm echo hi)
  r=$(time_run "$BUSYBOX_IMAGE" "r$i" echo hi)
  shared+=("$s"); normal+=("$w"); runc+=("$r")
  log "round $i: shared ${s} ms, normal ${w} ms, runc ${r} ms"
done
note="$(machine_note) rounds=$rounds"
echo "start latency: $note"
for kind in shared normal runc; do
  declare -n samples=$kind
  med=$(printf '%s\n' "${samples[@]}" | median)
  p10=$(printf '%s\n' "${samples[@]}" | percentile 10); p90=$(printf '%s\n' "${samples[@]}" | percentile 90)
  printf 'ctr run --rm echo, %-7s median %7s ms   p10 %7s   p90 %7s\n' "$kind" "$med" "$p10" "$p90"
  json_entry "shared start-latency $kind median" ms "$med" "$note samples=$(IFS=,; echo "${samples[*]}")"
  json_entry "shared start-latency $kind p10" ms "$p10" "$note"
  json_entry "shared start-latency $kind p90" ms "$p90" "$note"
  unset -n samples
done
sm=$(printf '%s\n' "${shared[@]}" | median); wm=$(printf '%s\n' "${normal[@]}" | median); rm_=$(printf '%s\n' "${runc[@]}" | median)
awk -v s="$sm" -v w="$wm" -v r="$rm_" 'BEGIN {printf "ratios (medians): shared/normal %.2f, shared/runc %.2f, normal/runc %.2f\n", s / w, s / r, w / r}'
[ "${ONLY_START:-}" = 1 ] && exit 0

# 2. Churn.
rootfs="$work/mock-rootfs"
mkdir -p "$rootfs"
cp "$out/wasm/wasi-demo-app.wasm" "$rootfs/"
common=(--count "$churn" --parallel "$parallel" --timeout 60)
value() { grep -A2 "\"name\": \"$2\"" "$1" | sed -n 's/.*"value": \([0-9.eE+-]*\).*/\1/p' | head -1; }
churn_run() { # churn_run NAME ARGS...: one stress run, its JSON kept as shared-churn-NAME.json
  local name=$1
  shift
  log "churn: $name"
  stress_ "${common[@]}" --name "shared churn $name" --json-output "$results/shared-churn-$name.json" "$@" >&2
}
churn_run shared --runtime "$SHARED_RUNTIME" --image "$DEMO_IMAGE" -- /wasi-demo-app.wasm echo hello
churn_run normal --runtime "$WASM_RUNTIME" --image "$DEMO_IMAGE" -- /wasi-demo-app.wasm echo hello
churn_run runc --runtime "$RUNC_RUNTIME" --image "$BUSYBOX_IMAGE" -- echo hello
churn_run shared-mock --mode shim --shim "$out/bin/containerd-shim-wasmtimed-v1" --rootfs "$rootfs" -- /wasi-demo-app.wasm echo hello
churn_run normal-mock --mode shim --shim "$out/bin/containerd-shim-wasmtime-v1" --rootfs "$rootfs" -- /wasi-demo-app.wasm echo hello
echo "churn: $(machine_note) count=$churn parallel=$parallel"
for name in shared normal runc shared-mock normal-mock; do
  f="$results/shared-churn-$name.json"
  printf 'churn %-12s %6s tasks/s  create p50 %7s ms  delete p50 %7s ms\n' "$name" \
    "$(value "$f" "shared churn $name tasks/s")" "$(value "$f" "shared churn $name create p50")" "$(value "$f" "shared churn $name delete p50")"
done

# 3. Density: the daemon's PSS with nothing running (one container done: engine, module compiled), then with
#    `density` instances sleeping at once.
sleep 2
base_pss=$(pss_kib "$daemon_pid"); base_threads=$(threads "$daemon_pid")
base_containerd=$(pss_kib "$containerd_pid")
log "density: daemon PSS ${base_pss} KiB, ${base_threads} threads before; starting $density sleeping instances"
started=$EPOCHREALTIME
seq "$density" | xargs -P 4 -I{} bash -c 'PATH="$0" "$1" --address "$2" --namespace bench run -d --null-io --runtime "$3" "$4" "d{}" /wasi-demo-app.wasm sleep 100000 >/dev/null' \
  "$out/bin:$bin:$PATH" "$bin/ctr" "$sock" "$SHARED_RUNTIME" "$DEMO_IMAGE"
start_s=$(awk -v s="$started" -v e="$EPOCHREALTIME" 'BEGIN {printf "%.1f", e - s}')
running=$(ctr_ task ls | grep -c RUNNING || true)
log "started $running of $density in ${start_s} s; settling 10 s"
sleep 10
pss=$(pss_kib "$daemon_pid"); nthreads=$(threads "$daemon_pid"); rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$daemon_pid/status")
containerd_pss=$(pss_kib "$containerd_pid")
per=$(awk -v a="$pss" -v b="$base_pss" -v n="$running" 'BEGIN {printf "%.1f", (a - b) / n}')
per_ctd=$(awk -v a="$containerd_pss" -v b="$base_containerd" -v n="$running" 'BEGIN {printf "%.1f", (a - b) / n}')
note="$(machine_note) instances=$running"
echo "density: $note"
echo "daemon PSS ${base_pss} KiB -> ${pss} KiB (RSS ${rss} KiB, threads ${base_threads} -> ${nthreads}) with $running instances: ${per} KiB per instance"
echo "containerd PSS ${base_containerd} KiB -> ${containerd_pss} KiB: ${per_ctd} KiB per container (containerd's own bookkeeping)"
json_entry "shared density daemon PSS per instance" KiB "$per" "$note base=${base_pss} after=${pss} threads=${nthreads} start_s=${start_s}"
json_entry "shared density containerd PSS per container" KiB "$per_ctd" "$note"
json_entry "shared density start all" s "$start_s" "$note"
# Tear the instances down in parallel (stop_containerd would take them one by one).
ctr_ task ls -q | xargs -r -P 4 -n 50 bash -c 'PATH="$0" "$1" --address "$2" --namespace bench task kill -s SIGKILL "${@:3}" >/dev/null 2>&1' \
  "$out/bin:$bin:$PATH" "$bin/ctr" "$sock" || true
sleep 3
ctr_ task ls -q | xargs -r -P 4 -n 50 bash -c 'PATH="$0" "$1" --address "$2" --namespace bench task delete "${@:3}" >/dev/null 2>&1' \
  "$out/bin:$bin:$PATH" "$bin/ctr" "$sock" || true
ctr_ container ls -q | xargs -r -P 4 -n 50 bash -c 'PATH="$0" "$1" --address "$2" --namespace bench container delete "${@:3}" >/dev/null 2>&1' \
  "$out/bin:$bin:$PATH" "$bin/ctr" "$sock" || true
json_write "$results/shared.json"
