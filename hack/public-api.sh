#!/usr/bin/env bash
# Regenerates the public API baselines (PublicAPI.Shipped.txt / PublicAPI.Unshipped.txt beside each library's
# .csproj) from what the code declares, with Microsoft.CodeAnalysis.PublicApiAnalyzers' own diagnostics and fixes:
#   1. a build lists RS0017 (a baseline line whose symbol is gone or no longer public): those lines are removed;
#   2. `dotnet format analyzers --diagnostics RS0016` applies the analyzer's code fix, which appends every public
#      symbol missing from the baselines to PublicAPI.Unshipped.txt.
# `hack/public-api.sh --ship` then moves the Unshipped lines into Shipped (do that when a version is released).
# Review the diff: every line is a promise to the packages' users.
set -euo pipefail
cd "$(dirname "$0")/.."
projects=(src/Ttrpc src/Containerd.Api src/Containerd.Shimkit src/Containerd.Shim.Wasm src/Containerd.Shim.Wasm.Shared src/Containerd.Shim.Wasmtime)
[[ $# -gt 0 ]] && projects=("$@")
ship=false
if [[ ${projects[0]} == --ship ]]; then
  ship=true
  projects=(src/Ttrpc src/Containerd.Api src/Containerd.Shimkit src/Containerd.Shim.Wasm src/Containerd.Shim.Wasm.Shared src/Containerd.Shim.Wasmtime)
fi

sorted() { # header first, then the entries sorted (ordinal), without duplicates
  { grep -x '#nullable enable' "$1" || true; { grep -vx '#nullable enable' "$1" || true; } | { grep -v '^$' || true; } | LC_ALL=C sort -u; } > "$1.tmp"
  mv "$1.tmp" "$1"
}

for p in "${projects[@]}"; do
  for f in Shipped Unshipped; do
    [[ -f $p/PublicAPI.$f.txt ]] || echo '#nullable enable' > "$p/PublicAPI.$f.txt"
  done
  if $ship; then
    grep -vx '#nullable enable' "$p/PublicAPI.Unshipped.txt" >> "$p/PublicAPI.Shipped.txt" || true
    echo '#nullable enable' > "$p/PublicAPI.Unshipped.txt"
    sorted "$p/PublicAPI.Shipped.txt"
    continue
  fi
  name=$(basename "$p")
  log=$(mktemp)
  # Only this project's own diagnostics count (dependencies are built, and checked, on their own turn).
  dotnet build "$p" -c Release --nologo -v:q -clp:NoSummary -p:TreatWarningsAsErrors=false -p:WarningsAsErrors= > "$log" 2>&1 || true
  { { grep -F "RS0017" "$log" || true; } | grep -F "[$PWD/$p/$name.csproj]" \
    || true; } | sed -n "s/.*Symbol '\(.*\)' is part of the declared API.*/\1/p" | sort -u | while IFS= read -r gone; do
      for f in Shipped Unshipped; do
        grep -vxF -- "$gone" "$p/PublicAPI.$f.txt" > "$p/PublicAPI.$f.txt.tmp" || true
        mv "$p/PublicAPI.$f.txt.tmp" "$p/PublicAPI.$f.txt"
      done
    done
  rm -f "$log"
  dotnet format analyzers "$p/$name.csproj" --diagnostics RS0016 --severity info -v q
  sorted "$p/PublicAPI.Unshipped.txt"
  sorted "$p/PublicAPI.Shipped.txt"
  echo "$p: $(grep -cv '^#' "$p/PublicAPI.Shipped.txt" || true) shipped, $(grep -cv '^#' "$p/PublicAPI.Unshipped.txt" || true) unshipped"
done
