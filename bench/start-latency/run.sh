#!/usr/bin/env bash
# Start latency: `ctr run --rm` of the wasm demo (echo, under containerd-shim-wasmtime-v1) against `ctr run --rm`
# of busybox echo under runc, on the same private containerd, interleaved round by round so that machine noise
# hits both alike. Prints each sample, the medians and the ratio wasm/runc. Not a timed test: run it by hand.
#
#   bench/start-latency/run.sh [rounds]        (default 20; CONTAINERD_VERSION=1.6|1.7|2, default 1.6)
#
# It builds what it needs (make shims wasm, the two images) and tears its containerd down on exit.
set -euo pipefail

rounds="${1:-20}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
out="${OUT:-$repo/out}"
version="${CONTAINERD_VERSION:-1.6}"

make -C "$repo" --no-print-directory shims wasm OUT="$out" >&2
bin="$(bash "$repo/hack/fetch-containerd.sh" "$version")"
images="$out/bench-images"
mkdir -p "$images"
builder=(dotnet run --project "$repo/tools/ImageBuilder" -c Release -v:q --)
[ -f "$images/demo.tar" ] || "${builder[@]}" demo --wasm "$out/wasm/wasi-demo-app.wasm" --output "$images/demo.tar" >&2
[ -f "$images/busybox.tar" ] || "${builder[@]}" busybox --output "$images/busybox.tar" >&2

work="$(mktemp -d /tmp/start-latency.XXXXXX)"
sock="$work/containerd.sock"
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
# The shim is found on containerd's PATH by its runtime name; the freshly built one goes first.
PATH="$out/bin:$bin:$PATH" "$bin/containerd" --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
containerd_pid=$!
for _ in $(seq 100); do ctr_ version >/dev/null 2>&1 && break; sleep 0.1; done
ctr_ images import "$images/demo.tar" >/dev/null
ctr_ images import "$images/busybox.tar" >/dev/null

now_ms() { date +%s%3N; }
time_run() { # prints milliseconds of one `ctr run --rm`
  local start end
  start=$(now_ms)
  ctr_ run --rm "$@" >/dev/null 2>&1
  end=$(now_ms)
  echo $((end - start))
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# One warm-up of each: the first run pays for snapshot unpacking and page cache.
time_run --runtime io.containerd.wasmtime.v1 ghcr.io/containerd/runwasi/wasi-demo-app:latest warm-w /wasi-demo-app.wasm echo hi >/dev/null
time_run docker.io/library/busybox:latest warm-r echo hi >/dev/null

wasm=() runc=()
for i in $(seq "$rounds"); do
  w=$(time_run --runtime io.containerd.wasmtime.v1 ghcr.io/containerd/runwasi/wasi-demo-app:latest "w$i" /wasi-demo-app.wasm echo hi)
  r=$(time_run docker.io/library/busybox:latest "r$i" echo hi)
  wasm+=("$w"); runc+=("$r")
  echo "round $i: wasm ${w} ms, runc ${r} ms" >&2
done
wm=$(printf '%s\n' "${wasm[@]}" | median)
rm_=$(printf '%s\n' "${runc[@]}" | median)
echo "containerd $("$bin/containerd" --version | awk '{print $3}'), $rounds rounds, $(nproc) cores"
echo "median ctr run --rm, wasm demo echo (wasmtime shim): ${wm} ms"
echo "median ctr run --rm, busybox echo (runc):           ${rm_} ms"
awk -v w="$wm" -v r="$rm_" 'BEGIN {printf "ratio wasm/runc: %.2f\n", w / r}'
