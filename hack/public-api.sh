#!/usr/bin/env bash
# Regenerates the public API baselines (PublicAPI.Shipped.txt / PublicAPI.Unshipped.txt beside each library's
# .csproj) from Microsoft.CodeAnalysis.PublicApiAnalyzers' own diagnostics: one full build with those diagnostics as
# warnings, then
#   RS0016 'X' is not part of the declared public API  -> X is added to PublicAPI.Unshipped.txt
#   RS0017 'X' is part of the declared API, but is ...  -> X is removed from both files
# The analyzer writes X in the baseline's own format (nullability, `~` for protoc's oblivious signatures), so its
# message is the line. Generated protobuf/gRPC code is included: it is public API too.
# `hack/public-api.sh --ship` moves the Unshipped lines into Shipped (when a version is released).
# Review the diff: every line is a promise to the packages' users.
set -euo pipefail
cd "$(dirname "$0")/.."
projects=(src/Ttrpc src/Containerd.Api src/Containerd.Shimkit src/Containerd.Shim.Wasm src/Containerd.Shim.Wasm.Shared src/Containerd.Shim.Wasmtime src/Containerd.Shim.Wasmtime.Http src/Containerd.Shim.Wasmtime.Shared)
for p in "${projects[@]}"; do
  for f in Shipped Unshipped; do
    [[ -f $p/PublicAPI.$f.txt ]] || echo '#nullable enable' > "$p/PublicAPI.$f.txt"
  done
done
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if [[ ${1:-} != --ship ]]; then
  # The shared-mode Wasmtime library references every other one; --no-incremental so every project reports again.
  dotnet build src/Containerd.Shim.Wasmtime.Shared -c Release --nologo -v:q -clp:NoSummary --no-incremental \
    -p:TreatWarningsAsErrors=false -p:WarningsAsErrors= > "$log" 2>&1 || { cat "$log"; exit 1; }
fi
python3 - "$log" "${1:-}" "${projects[@]}" <<'PY'
import collections, re, sys
log, mode, projects = sys.argv[1], sys.argv[2], sys.argv[3:]
added, removed = collections.defaultdict(set), collections.defaultdict(set)
for line in open(log):
    m = re.search(r"(RS0016|RS0017): Symbol '(.*)' is (?:not )?part of the declared .*\[(/[^\]]+)/[^/\]]+\.csproj\]", line)
    if m:
        (added if m.group(1) == "RS0016" else removed)[m.group(3)].add(m.group(2))
def load(path):
    return {l.rstrip("\n") for l in open(path)} - {"", "#nullable enable"}
def save(path, lines):
    open(path, "w").write("#nullable enable\n" + "".join(l + "\n" for l in sorted(lines, key=lambda s: s.encode())))
import os
for p in projects:
    full = os.path.abspath(p)
    shipped, unshipped = load(p + "/PublicAPI.Shipped.txt"), load(p + "/PublicAPI.Unshipped.txt")
    if mode == "--ship":
        shipped, unshipped = shipped | unshipped, set()
    else:
        shipped -= removed[full]
        unshipped = (unshipped - removed[full]) | added[full]
    save(p + "/PublicAPI.Shipped.txt", shipped)
    save(p + "/PublicAPI.Unshipped.txt", unshipped)
    print(f"{p}: {len(shipped)} shipped, {len(unshipped)} unshipped (+{len(added[full])} -{len(removed[full])})")
PY
