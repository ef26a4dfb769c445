#!/usr/bin/env bash
# Warm and cold starts: `ctr run --rm` echo of the demo as a wasm-layer image (compiled blob in containerd's content
# store) and as a plain image (compiled artifact in the shim's cache folder), each warm and cold, against busybox echo
# under runc, on one private containerd, interleaved round by round so machine noise hits every series alike.
# Prints each sample, then per series the median, quartiles and extremes, and the warm-wasm/runc ratio.
# Not a timed test: run it by hand.
#
#   bench/warm-start/run.sh [rounds]     (default 20; CONTAINERD_VERSION=1.7|2, default 1.7: 1.6.20 cannot import
#                                         wasm-layer images)
#
# Cold means: before the run, the layer's compiled blob and its runwasi.io/precompiled label are removed (wasm
# layer), or the cache folder is emptied (plain image), so that the engine compiles. It builds what it needs
# (make shims wasm, the three images) and tears its containerd down on exit.
set -euo pipefail

rounds="${1:-20}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
out="${OUT:-$repo/out}"
version="${CONTAINERD_VERSION:-1.7}"
wasm_rt=io.containerd.wasmtime.v1
plain=ghcr.io/containerd/runwasi/wasi-demo-app:latest
layered=ghcr.io/containerd/runwasi/wasi-demo-oci:latest
busybox=docker.io/library/busybox:latest

make -C "$repo" --no-print-directory shims wasm OUT="$out" >&2
bin="$(bash "$repo/hack/fetch-containerd.sh" "$version")"
images="$out/bench-images"
mkdir -p "$images"
builder=(dotnet run --project "$repo/tools/ImageBuilder" -c Release -v:q --)
[ -f "$images/demo.tar" ] || "${builder[@]}" demo --wasm "$out/wasm/wasi-demo-app.wasm" --output "$images/demo.tar" >&2
[ -f "$images/demo-oci.tar" ] || "${builder[@]}" demo-oci --wasm "$out/wasm/wasi-demo-app.wasm" --output "$images/demo-oci.tar" >&2
[ -f "$images/busybox.tar" ] || "${builder[@]}" busybox --output "$images/busybox.tar" >&2

work="$(mktemp -d /tmp/warm-start.XXXXXX)"
sock="$work/containerd.sock"
cache="$work/cache"
containerd_pid=""
cleanup() {
  set +e
  if [ -n "$containerd_pid" ]; then
    for id in $(ctr_ task ls -q 2>/dev/null); do ctr_ task kill -s SIGKILL "$id"; ctr_ task delete -f "$id"; done >/dev/null 2>&1
    for id in $(ctr_ container ls -q 2>/dev/null); do ctr_ container delete "$id"; done >/dev/null 2>&1
    kill "$containerd_pid"; wait "$containerd_pid"
  fi
  grep " $work" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l
  rm -rf "$work"
}
trap cleanup EXIT
ctr_() { PATH="$out/bin:$bin:$PATH" "$bin/ctr" --address "$sock" --namespace bench "$@"; }

config_version=2; [ "${version%%.*}" = 2 ] && config_version=3
cat > "$work/config.toml" <<TOML
version = $config_version
root = "$work/root"
state = "$work/state"
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.grpc.v1.cri"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
TOML
# The shim is found on containerd's PATH by its runtime name; the freshly built one goes first. Its cache folder
# is this run's own.
CONTAINERD_SHIM_WASMTIME_CACHE="$cache" PATH="$out/bin:$bin:$PATH" \
  "$bin/containerd" --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
containerd_pid=$!
for _ in $(seq 100); do ctr_ version >/dev/null 2>&1 && break; sleep 0.1; done
ctr_ images import "$images/demo.tar" >/dev/null
ctr_ images import --all-platforms "$images/demo-oci.tar" >/dev/null
ctr_ images import "$images/busybox.tar" >/dev/null

now_ms() { date +%s%3N; }
time_run() { # prints milliseconds of one `ctr run --rm`; a failed run aborts the benchmark
  local start end
  start=$(now_ms)
  if ! ctr_ run --rm "$@" >/dev/null 2>"$work/run.err"; then
    echo "ctr run $* failed: $(cat "$work/run.err")" >&2
    exit 1
  fi
  end=$(now_ms)
  echo $((end - start))
}
run_layered() { time_run --runtime "$wasm_rt" "$layered" "$1" wasi-demo-oci.wasm echo hi; }
run_plain() { time_run --runtime "$wasm_rt" "$plain" "$1" /wasi-demo-app.wasm echo hi; }
run_runc() { time_run "$busybox" "$1" echo hi; }

# The layer's compiled blob and labels, as `ctr content ls` shows them after a first run.
forget_layer() {
  local line layer label
  line="$(ctr_ content ls | grep -E 'runwasi.io/precompiled/wasmtime/[0-9a-f]+=sha256:' | head -1)" || return 0
  layer="$(awk '{print $1}' <<<"$line")"
  label="$(grep -oE 'runwasi.io/precompiled/wasmtime/[0-9a-f]+=sha256:[0-9a-f]+' <<<"$line" | head -1)"
  ctr_ content label "$layer" "${label%%=*}=" >/dev/null
  ctr_ content rm "${label#*=}" >/dev/null 2>&1 || true
}
forget_plain() { rm -rf "$cache/wasmtime"; }

# One run of each first: snapshot unpacking, page cache, and the first compile of each image.
run_layered warm-l >/dev/null; run_plain warm-p >/dev/null; run_runc warm-r >/dev/null

declare -A samples
series=(runc layered-warm plain-warm layered-cold plain-cold)
for i in $(seq "$rounds"); do
  r=$(run_runc "r$i")
  lw=$(run_layered "lw$i")
  pw=$(run_plain "pw$i")
  forget_layer; lc=$(run_layered "lc$i")
  forget_plain; pc=$(run_plain "pc$i")
  samples[runc]+="$r "; samples[layered-warm]+="$lw "; samples[plain-warm]+="$pw "
  samples[layered-cold]+="$lc "; samples[plain-cold]+="$pc "
  echo "round $i: runc $r, wasm-layer warm $lw, plain warm $pw, wasm-layer cold $lc, plain cold $pc (ms)" >&2
done

stats() { # median p25 p75 min max of the numbers on stdin
  tr ' ' '\n' | grep -v '^$' | sort -n | awk '
    function at(p,   i) { i = 1 + p * (NR - 1); return a[int(i)] + (i - int(i)) * (a[int(i) + 1] - a[int(i)]) }
    {a[NR] = $1}
    END {printf "%.0f %.0f %.0f %d %d\n", at(0.5), at(0.25), at(0.75), a[1], a[NR]}'
}
echo "containerd $("$bin/containerd" --version | awk '{print $3}'), $rounds rounds, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| series | median ms | p25–p75 ms | min–max ms |"
echo "|---|---:|---:|---:|"
declare -A median
for s in "${series[@]}"; do
  read -r med p25 p75 min max <<<"$(stats <<<"${samples[$s]}")"
  median[$s]=$med
  echo "| $s | $med | $p25–$p75 | $min–$max |"
done
awk -v w="${median[layered-warm]}" -v p="${median[plain-warm]}" -v r="${median[runc]}" \
  'BEGIN {printf "ratio warm wasm-layer / runc: %.2f; warm plain / runc: %.2f\n", w / r, p / r}'
