#!/usr/bin/env bash
# Density: the memory each long-running container adds, wasm against runc, measured in the same run.
#
#   bench/density/run.sh [count]     (default 100 of each; CONTAINERD_VERSION=1.6|1.7|2, default 1.6; RESULTS=<dir>)
#   DENSITY_RUNTIMES="wasm runc"     which kinds to start (default both, and "before" with WASM_BEFORE_BIN, see
#                                    bench/lib/common.sh)
#   DENSITY_TAG=<tag>                names the result file density[-<tag>].json and the JSON names (for variants)
#   CONTAINERD_ENV="NAME=value …"    environment for containerd and so for every shim and instance process, e.g.
#                                    DOTNET_GCgen0size=0x200000 to try a GC setting without rebuilding the shim
#
# Starts `count` containers of each kind, interleaved (wasm 1, runc 1, wasm 2, …): the demo's `daemon` (a verse a
# second, forever) under the wasmtime shim, `busybox sleep` under io.containerd.runc.v2. Once all run it reads, per
# container, the PSS of its shim process and of its task process (/proc/<pid>/smaps_rollup; PSS splits shared pages
# between the processes that map them, so the sum over all processes is what the containers really cost together)
# and the kernel's charge to the container's memory cgroup (cgroup v1 memory.usage_in_bytes of /bench/<id>, where
# ctr puts a container; absent when the shim makes no cgroup). It then prints where one process of each kind keeps its
# memory, mapping by mapping (/proc/<pid>/smaps). Everything is killed, deleted and unmounted on exit.
set -euo pipefail
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
count="${1:-100}"
kinds="${DENSITY_RUNTIMES:-wasm runc${WASM_BEFORE_BIN:+ before}}"
tag="${DENSITY_TAG:-}"
prefix="density${tag:+ $tag}"

bench_build
start_containerd

start_one() { # start_one KIND N
  case "$1" in
    wasm) ctr_ run -d --runtime "$WASM_RUNTIME" "$DEMO_IMAGE" "wasm-$2" /wasi-demo-app.wasm daemon >/dev/null ;;
    runc) ctr_ run -d "$BUSYBOX_IMAGE" "runc-$2" sleep 100000 >/dev/null ;;
    before) ctr_ run -d --runtime "$BEFORE_RUNTIME" "$DEMO_IMAGE" "before-$2" /wasi-demo-app.wasm daemon >/dev/null ;;
  esac
}
started=$EPOCHREALTIME
for i in $(seq "$count"); do
  for kind in $kinds; do start_one "$kind" "$i"; done
  (( i % 20 == 0 )) && log "started $i of each of: $kinds"
done
log "all started in $(awk -v s="$started" -v e="$EPOCHREALTIME" 'BEGIN {printf "%.1f", e - s}') s; settling 10 s"
sleep 10

field_kb() { awk -v f="$2:" '$1 == f {print $2; exit}' "$1" 2>/dev/null || echo 0; }
# Task pids from containerd; a task's shim is its parent (the runc shim reaps its container, ours spawns the
# instance process from its server process).
declare -A task_pid
while read -r id pid status; do
  [ "$status" = RUNNING ] && task_pid[$id]=$pid
done < <(ctr_ task ls | tail -n +2)

note="$(machine_note) count=$count${CONTAINERD_ENV:+ env=${CONTAINERD_ENV// /,}}"
echo "density: $note"
for kind in $kinds; do
  running=0 shim_pss=0 task_pss=0 shim_rss=0 task_rss=0 cg=0 cg_n=0 sample_shim="" sample_task=""
  declare -A shims=()
  for i in $(seq "$count"); do
    id="$kind-$i"
    pid="${task_pid[$id]:-}"
    [ -n "$pid" ] || { log "$id is not running"; continue; }
    running=$((running + 1))
    shim=$(awk '{print $4}' "/proc/$pid/stat")
    task_pss=$((task_pss + $(field_kb "/proc/$pid/smaps_rollup" Pss)))
    task_rss=$((task_rss + $(field_kb "/proc/$pid/smaps_rollup" Rss)))
    shims[$shim]=1
    sample_shim=$shim sample_task=$pid
    usage="/sys/fs/cgroup/memory/bench/$id/memory.usage_in_bytes"
    if [ -r "$usage" ]; then cg=$((cg + $(cat "$usage"))); cg_n=$((cg_n + 1)); fi
  done
  for shim in "${!shims[@]}"; do
    shim_pss=$((shim_pss + $(field_kb "/proc/$shim/smaps_rollup" Pss)))
    shim_rss=$((shim_rss + $(field_kb "/proc/$shim/smaps_rollup" Rss)))
  done
  [ "$running" -gt 0 ] || { log "no $kind container is running"; exit 1; }
  per() { awk -v t="$1" -v n="$2" 'BEGIN {printf "%.2f", t / n / 1024}'; }  # KiB total → MiB per container
  s=$(per "$shim_pss" "$running"); t=$(per "$task_pss" "$running"); sum=$(per $((shim_pss + task_pss)) "$running")
  printf '%s: %d running, %d shim processes; PSS per container: shim %s MiB + task %s MiB = %s MiB (RSS shim %s, task %s MiB)\n' \
    "$kind" "$running" "${#shims[@]}" "$s" "$t" "$sum" "$(per "$shim_rss" "$running")" "$(per "$task_rss" "$running")"
  extra="$note running=$running shims=${#shims[@]}"
  json_entry "$prefix $kind pss per container" MiB "$sum" "$extra"
  json_entry "$prefix $kind shim pss per container" MiB "$s" "$extra"
  json_entry "$prefix $kind task pss per container" MiB "$t" "$extra"
  if [ "$cg_n" -gt 0 ]; then
    c=$(awk -v t="$cg" -v n="$cg_n" 'BEGIN {printf "%.2f", t / n / 1048576}')
    printf '%s: memory cgroup usage per container %s MiB (%d cgroups)\n' "$kind" "$c" "$cg_n"
    json_entry "$prefix $kind cgroup usage per container" MiB "$c" "$extra cgroups=$cg_n"
  else
    printf '%s: no memory cgroup per container (the shim creates none)\n' "$kind"
  fi
  # Where the memory of one shim and one task process goes: PSS by mapping, largest first.
  for role in shim task; do
    pid=$sample_shim; [ "$role" = task ] && pid=$sample_task
    echo "  $kind $role (pid $pid, $(tr '\0' ' ' < "/proc/$pid/cmdline" | cut -c1-60)) PSS by mapping, KiB:"
    awk '
      /^[0-9a-f]+-[0-9a-f]+ / {
        name = $6
        for (i = 7; i <= NF; i++) name = name " " $i
        anon = (name == "")
        next
      }
      $1 == "Size:" && anon { name = ($2 >= 1048576) ? "[anon, reservation >= 1 GiB]" : ($2 >= 65536 ? "[anon, 64 MiB - 1 GiB]" : "[anon, < 64 MiB]") }
      $1 == "Pss:" { pss[name] += $2; total += $2 }
      END { for (n in pss) if (pss[n] >= 16) printf "    %8d  %s\n", pss[n], n; printf "    %8d  total\n", total }
    ' "/proc/$pid/smaps" | sort -rn | head -14
    grep -E '^(Threads|VmRSS|VmHWM)' "/proc/$pid/status" | tr -s '\t ' ' ' | sed 's/^/    /'
  done
done
json_write "$results/density${tag:+-$tag}.json"
