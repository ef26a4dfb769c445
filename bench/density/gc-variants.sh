#!/usr/bin/env bash
# Which .NET GC setting lowers the memory of our processes: runs bench/density/run.sh for wasm containers only, once
# per variant, each on its own containerd whose environment (inherited by every shim and instance process) carries
# the setting. NativeAOT reads DOTNET_* GC settings from the environment at start, so no rebuild is needed.
#
#   bench/density/gc-variants.sh [count]     (default 20 containers per variant; RESULTS=<dir>)
set -euo pipefail
count="${1:-20}"
here="$(dirname "$0")"
declare -A variants=(
  [default]=""
  [nonconcurrent]="DOTNET_gcConcurrent=0"
  [gen0-1mib]="DOTNET_GCgen0size=0x100000"
  [conserve]="DOTNET_GCConserveMemory=9"
  [hardlimit-32mib]="DOTNET_GCHeapHardLimit=0x2000000"
  [nonconcurrent-gen0-1mib]="DOTNET_gcConcurrent=0 DOTNET_GCgen0size=0x100000"
)
for tag in default nonconcurrent gen0-1mib conserve hardlimit-32mib nonconcurrent-gen0-1mib; do
  echo "== $tag: ${variants[$tag]:-(no setting)}"
  CONTAINERD_ENV="${variants[$tag]}" DENSITY_RUNTIMES=wasm DENSITY_TAG="gc-$tag" bash "$here/run.sh" "$count" | grep -E "PSS per container|total$|Threads" || true
done
