#!/usr/bin/env bash
# Warm and cold starts: `ctr run --rm` echo of the demo as a wasm-layer image (compiled blob in containerd's content
# store) and as a plain image (compiled artifact in the shim's cache folder), each warm and cold, against busybox echo
# under runc, on one private containerd, interleaved round by round so machine noise hits every series alike.
# Prints each sample, then per series the median, quartiles and extremes, and the warm-wasm/runc ratios; writes
# $RESULTS/warm-start.json. Not a timed test: run it by hand.
#
# Next to the wall time it measures the CPU time of each run, every process included (ctr, containerd, the shims,
# runc, the instance or container process): containerd and ctr run in a cpuacct cgroup of their own and every
# container's cgroup (ctr run --cgroup) is made below it, so cpuacct.usage counts them all, and a loaded machine
# (other users' load shows in the wall time) barely moves it. The CPU time is split four ways: ctr (bash's `time`),
# containerd's own (its utime+stime), the shim invocations containerd waits for (cutime+cstime: `start` and `delete`,
# and runc's shim's own children) and the rest: the long-lived shim servers (they are re-parented away from
# containerd) with runc, the container and instance processes they reap. containerd's figures come in clock ticks
# (10 ms), so only their means over many rounds mean anything.
#
#   bench/warm-start/run.sh [rounds]     (default 20; CONTAINERD_VERSION=1.7|2, default 1.7: 1.6.20 cannot import
#                                         wasm-layer images; COLD=0 leaves the cold series out)
#
# BASELINE=<folder> adds the warm series of another build, side by side: the folder holds that build's shim renamed
# containerd-shim-wasmbase-v1 (runtime io.containerd.wasmbase.v1) and its libwasmtime.so. Both builds share the
# caches (same Wasmtime and settings, so the same compatibility hash).
#
# Cold means: before the run, the layer's compiled blob and its runwasi.io/precompiled label are removed (wasm
# layer), or the cache folder is emptied (plain image), so that the engine compiles. It builds what it needs
# (make shims wasm, the images) and tears its containerd down on exit.
set -euo pipefail
export CONTAINERD_VERSION="${CONTAINERD_VERSION:-1.7}"
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
rounds="${1:-20}"
cold="${COLD:-1}"
layered=ghcr.io/containerd/runwasi/wasi-demo-oci:latest

bench_build
[ -f "$images/demo-oci.tar" ] || dotnet run --project "$repo/tools/ImageBuilder" -c Release -v:q -- demo-oci \
  --wasm "$out/wasm/wasi-demo-app.wasm" --output "$images/demo-oci.tar" >&2
# The shim's cache folder for rootfs modules is this run's own, given to containerd and so to every shim.
cache="$(mktemp -d /tmp/warm-start-cache.XXXXXX)"
CONTAINERD_ENV="${CONTAINERD_ENV:-} CONTAINERD_SHIM_WASMTIME_CACHE=$cache"
baseline="${BASELINE:-}"
[ -n "$baseline" ] && CONTAINERD_ENV="$CONTAINERD_ENV PATH=$baseline:$out/bin:$bin:$PATH"
start_containerd
acct_name="warm-start-$$"
acct="/sys/fs/cgroup/cpuacct/$acct_name"
mkdir -p "$acct"
cleanup_acct() { # after containerd has stopped: the cgroups left empty below every hierarchy
  local dir
  for dir in /sys/fs/cgroup/*/"$acct_name"; do
    [ -d "$dir" ] && find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  true
}
trap 'stop_containerd; cleanup_acct; rm -rf "$cache"' EXIT
# Every thread of containerd (cgroup.procs moves the whole process); the shims it starts inherit the cgroup.
echo "$containerd_pid" >"$acct/cgroup.procs"
ctr_ images import --all-platforms "$images/demo-oci.tar" >/dev/null

TIMEFORMAT='%3U %3S' # bash's `time` of ctr: user and system seconds
time_run() { # time_run ID ARGS...: prints "wall_ms cpu_ms" of one `ctr run --rm ARGS[..image] ID ARGS[image..]`
  local id="$1"; shift
  local start end cpu0 cpu1 i
  # ctr run [flags] IMAGE ID [ARGS]: the image is the first argument that is not a flag or a flag's value
  local flags=() rest=("$@")
  while [ "${#rest[@]}" -gt 0 ] && [ "${rest[0]:0:2}" = "--" ]; do flags+=("${rest[0]}" "${rest[1]}"); rest=("${rest[@]:2}"); done
  cpu0=$(<"$acct/cpuacct.usage")
  local -a st0 st1
  read -ra st0 <<<"$(sed 's/.*) //' "/proc/$containerd_pid/stat")"
  start=$EPOCHREALTIME

  # A simple command, not a subshell: bash's `time` reports nothing for a timed subshell inside a function.
  if ! { time sh -c 'echo $$ >"$0/cgroup.procs"; shift; exec "$@"' "$acct" - "$bin/ctr" --address "$sock" --namespace bench \
        run --rm --cgroup "/$acct_name/$id" "${flags[@]}" "${rest[0]}" "$id" "${rest[@]:1}" >/dev/null 2>"$work/run.err"; } \
        2>"$work/time.out"; then
    log "ctr run $id $* failed: $(cat "$work/run.err")"
    exit 1
  fi
  end=$EPOCHREALTIME
  # containerd reaps the shim server a moment after ctr returns
  sleep 0.05
  cpu1=$(<"$acct/cpuacct.usage")
  read -ra st1 <<<"$(sed 's/.*) //' "/proc/$containerd_pid/stat")"
  # after "pid (comm) ": utime stime cutime cstime are fields 12-15 (0-based 11-14), in ticks of 1/100 s
  awk -v s="$start" -v e="$end" -v c0="$cpu0" -v c1="$cpu1" \
    -v self=$(( (st1[11] + st1[12]) - (st0[11] + st0[12]) )) -v kids=$(( (st1[13] + st1[14]) - (st0[13] + st0[14]) )) \
    -v ctr="$(awk '{print ($1 + $2) * 1000}' "$work/time.out")" \
    'BEGIN {printf "%.1f %.1f %d %d %.1f", (e - s) * 1000, (c1 - c0) / 1e6, self * 10, kids * 10, ctr}'
}
run_layered() { time_run "$1" --runtime "$WASM_RUNTIME" "$layered" wasi-demo-oci.wasm echo hi; }
run_plain() { time_run "$1" --runtime "$WASM_RUNTIME" "$DEMO_IMAGE" /wasi-demo-app.wasm echo hi; }
run_runc() { time_run "$1" "$BUSYBOX_IMAGE" echo hi; }
run_noop() { time_run "$1" "$NOOP_IMAGE"; }
run_layered_base() { time_run "$1" --runtime io.containerd.wasmbase.v1 "$layered" wasi-demo-oci.wasm echo hi; }
run_plain_base() { time_run "$1" --runtime io.containerd.wasmbase.v1 "$DEMO_IMAGE" /wasi-demo-app.wasm echo hi; }

# The layer's compiled blob and labels, as `ctr content ls` shows them after a first run.
forget_layer() {
  local line layer label
  line="$(ctr_ content ls | grep -E 'runwasi.io/precompiled/wasmtime/[0-9a-f]+=sha256:' | head -1)" || return 0
  layer="$(awk '{print $1}' <<<"$line")"
  label="$(grep -oE 'runwasi.io/precompiled/wasmtime/[0-9a-f]+=sha256:[0-9a-f]+' <<<"$line" | head -1)"
  ctr_ content label "$layer" "${label%%=*}=" >/dev/null
  ctr_ content rm "${label#*=}" >/dev/null 2>&1 || true
}
forget_plain() { rm -rf "${cache:?}/wasmtime"; }

# One run of each first: snapshot unpacking, page cache, and the first compile of each image.
run_layered warm-l >/dev/null; run_plain warm-p >/dev/null; run_runc warm-r >/dev/null; run_noop warm-n >/dev/null

series=(runc noop layered-warm plain-warm)
if [ -n "$baseline" ]; then
  series+=(layered-warm-base plain-warm-base)
  run_layered_base warm-lb >/dev/null; run_plain_base warm-pb >/dev/null
fi
[ "$cold" = 1 ] && series+=(layered-cold plain-cold)
declare -A wall cpu self kids ctrcpu
sample() { # sample SERIES WALL CPU CONTAINERD_SELF REAPED CTR
  wall[$1]+="$2 "; cpu[$1]+="$3 "; self[$1]+="$4 "; kids[$1]+="$5 "; ctrcpu[$1]+="$6 "
  line+=", $1 $2 ms ($3 ms CPU)"
}
for i in $(seq "$rounds"); do
  line="round $i"
  # shellcheck disable=SC2046 # two words: wall and CPU
  sample runc $(run_runc "r$i")
  # shellcheck disable=SC2046
  sample noop $(run_noop "n$i")
  # shellcheck disable=SC2046
  sample layered-warm $(run_layered "lw$i")
  # shellcheck disable=SC2046
  sample plain-warm $(run_plain "pw$i")
  if [ -n "$baseline" ]; then
    # shellcheck disable=SC2046
    sample layered-warm-base $(run_layered_base "lb$i")
    # shellcheck disable=SC2046
    sample plain-warm-base $(run_plain_base "pb$i")
  fi
  if [ "$cold" = 1 ]; then
    forget_layer
    # shellcheck disable=SC2046
    sample layered-cold $(run_layered "lc$i")
    forget_plain
    # shellcheck disable=SC2046
    sample plain-cold $(run_plain "pc$i")
  fi
  log "$line"
done

quartiles() { # median p25 p75 min max of the numbers on stdin
  tr ' ' '\n' | grep -v '^$' | sort -g | awk '
    function at(p,   i) { i = 1 + p * (NR - 1); return a[int(i)] + (i - int(i)) * (a[int(i) + 1] - a[int(i)]) }
    {a[NR] = $1}
    END {printf "%.1f %.1f %.1f %s %s\n", at(0.5), at(0.25), at(0.75), a[1], a[NR]}'
}
note="$(machine_note) rounds=$rounds"
echo "warm start: $note"
mean() { tr ' ' '\n' | grep -v '^$' | awk '{t += $1} END {printf "%.1f", t / NR}'; }
echo "| series | wall median ms | wall p25–p75 | wall min–max | CPU median ms | CPU p25–p75 | CPU means: ctr | containerd | shim start + delete | shim server and what it reaps |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
declare -A med cmed
for s in "${series[@]}"; do
  read -r m p25 p75 min max <<<"$(quartiles <<<"${wall[$s]}")"
  read -r cm cp25 cp75 _ _ <<<"$(quartiles <<<"${cpu[$s]}")"
  med[$s]=$m; cmed[$s]=$cm
  c=$(mean <<<"${ctrcpu[$s]}"); d=$(mean <<<"${self[$s]}"); k=$(mean <<<"${kids[$s]}"); t=$(mean <<<"${cpu[$s]}")
  echo "| $s | $m | $p25–$p75 | $min–$max | $cm | $cp25–$cp75 | $c | $d | $k | $(awk -v t="$t" -v c="$c" -v d="$d" -v k="$k" 'BEGIN {printf "%.1f", t - c - d - k}') |"
  json_entry "warm-start $s median" ms "$m" "$note samples=$(tr ' ' ',' <<<"${wall[$s]% }")"
  json_entry "warm-start $s cpu median" ms "$cm" "$note samples=$(tr ' ' ',' <<<"${cpu[$s]% }")"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
echo "wall ratio to runc busybox: warm wasm-layer $(ratio "${med[layered-warm]}" "${med[runc]}"), warm plain $(ratio "${med[plain-warm]}" "${med[runc]}"), runc no-op $(ratio "${med[noop]}" "${med[runc]}")"
echo "CPU ratio to runc busybox: warm wasm-layer $(ratio "${cmed[layered-warm]}" "${cmed[runc]}"), warm plain $(ratio "${cmed[plain-warm]}" "${cmed[runc]}"), runc no-op $(ratio "${cmed[noop]}" "${cmed[runc]}")"
if [ -n "$baseline" ]; then
  echo "this build / baseline, wall: wasm-layer $(ratio "${med[layered-warm]}" "${med[layered-warm-base]}"), plain $(ratio "${med[plain-warm]}" "${med[plain-warm-base]}"); CPU: wasm-layer $(ratio "${cmed[layered-warm]}" "${cmed[layered-warm-base]}"), plain $(ratio "${cmed[plain-warm]}" "${cmed[plain-warm-base]}")"
fi
json_write "$results/warm-start.json"
