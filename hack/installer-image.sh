#!/usr/bin/env bash
# Builds the node installer's image (deploy/installer-daemonset.yaml): the self-contained installer, the shim and
# libwasmtime.so under /opt/containerd-wasm, plus the C libraries the installer links, as ldd lists them.
# Usage: hack/installer-image.sh <installer binary> <shim bin dir> <output tar>
set -euo pipefail
installer=$1 shims=$2 output=$3
args=(--dir opt --dir opt/containerd-wasm --dir tmp:1777
  --file "opt/containerd-wasm/containerd-wasm-install=$installer:755"
  --file "opt/containerd-wasm/containerd-shim-wasmtime-v1=$shims/containerd-shim-wasmtime-v1:755"
  --file "opt/containerd-wasm/libwasmtime.so=$shims/libwasmtime.so:755")
# "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" and "/lib64/ld-linux-x86-64.so.2 (0x…)": the paths the loader uses.
mapfile -t libs < <(ldd "$installer" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)
declare -A dirs=()
for lib in "${libs[@]}"; do
  d=$(dirname "${lib#/}")
  while [ "$d" != "." ] && [ -z "${dirs[$d]:-}" ]; do dirs[$d]=1; d=$(dirname "$d"); done
done
for d in $(printf '%s\n' "${!dirs[@]}" | sort); do args+=(--dir "$d"); done
for lib in "${libs[@]}"; do args+=(--file "${lib#/}=$(readlink -f "$lib"):755"); done
mkdir -p "$(dirname "$output")"
dotnet run --project tools/ImageBuilder -c "${CONFIGURATION:-Release}" -v:q -- build --name containerd-wasm-install:latest \
  "${args[@]}" --entrypoint /opt/containerd-wasm/containerd-wasm-install --output "$output"
