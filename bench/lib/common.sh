#!/usr/bin/env bash
# Shared by the benchmark scripts under bench/: build what they need, start a private containerd, time things and
# write results as benchmark-action JSON ([{"name","unit","value","extra"}], the format the stress tool writes).
# Source it; it sets `repo`, `out`, `bin` (containerd's folder), `images`, `results` and defines the helpers below.

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${OUT:-$repo/out}"
version="${CONTAINERD_VERSION:-1.6}"
# Where every script writes its JSON; `make bench` and bench/Charts read them from here.
results="${RESULTS:-$out/bench-results}"
images="$out/bench-images"
mkdir -p "$results" "$images"

DEMO_IMAGE=ghcr.io/containerd/runwasi/wasi-demo-app:latest
BUSYBOX_IMAGE=docker.io/library/busybox:latest
NOOP_IMAGE=bench.local/noop:latest
NOOP_WASM_IMAGE=bench.local/noop-wasm:latest
WASM_RUNTIME=io.containerd.wasmtime.v1
RUNC_RUNTIME=io.containerd.runc.v2
# WASM_BEFORE_BIN=<folder with another build's containerd-shim-wasmtime-v1 and libwasmtime.so>: that build runs too,
# as this runtime, so that two builds of the shim are measured side by side in one run (the scripts add a "before"
# series).
BEFORE_RUNTIME=io.containerd.wasmtimebefore.v1

log() { echo "$*" >&2; }

# make shims wasm, containerd, the demo/busybox/no-op images.
bench_build() {
  make -C "$repo" --no-print-directory shims wasm OUT="$out" >&2
  bin="$(bash "$repo/hack/fetch-containerd.sh" "$version")"
  local builder=(dotnet run --project "$repo/tools/ImageBuilder" -c Release -v:q --)
  [ -f "$images/demo.tar" ] || "${builder[@]}" demo --wasm "$out/wasm/wasi-demo-app.wasm" --output "$images/demo.tar" >&2
  [ -f "$images/busybox.tar" ] || "${builder[@]}" busybox --output "$images/busybox.tar" >&2
  if [ ! -f "$images/noop.tar" ] || [ "$repo/bench/floors/noop.c" -nt "$images/noop.tar" ]; then
    gcc -static -O2 -o "$images/noop" "$repo/bench/floors/noop.c"
    clang --target=wasm32-wasi -O2 -o "$images/noop.wasm" "$repo/bench/floors/noop.c"
    "${builder[@]}" build --name "$NOOP_IMAGE" --file "noop=$images/noop:755" --entrypoint /noop --output "$images/noop.tar" >&2
    "${builder[@]}" build --name "$NOOP_WASM_IMAGE" --file "noop.wasm=$images/noop.wasm:755" --entrypoint /noop.wasm \
      --output "$images/noop-wasm.tar" >&2
  fi
}

# The stress tool (tools/Stress), built in Release.
stress_build() {
  dotnet build "$repo/tools/Stress" -c Release -v:q --nologo -clp:NoSummary >&2
  stress_dll="$repo/tools/Stress/bin/Release/net10.0/stress.dll"
}

# Starts a private containerd under a fresh /tmp folder (`work`, socket `sock`) and registers its teardown on EXIT.
# Extra environment for containerd (and so for the shims it starts) comes from CONTAINERD_ENV ("A=1 B=2").
work=""
containerd_pid=""
start_containerd() {
  work="$(mktemp -d /tmp/bench.XXXXXX)"
  sock="$work/containerd.sock"
  local config_version=2
  [ "${version%%.*}" = 2 ] && config_version=3
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
  # shellcheck disable=SC2086 # CONTAINERD_ENV is a list of NAME=value words
  # CONTAINERD_ARGS: extra flags for containerd (e.g. "--log-level debug").
  # shellcheck disable=SC2086 # CONTAINERD_ARGS is a list of words
  if [ -n "${WASM_BEFORE_BIN:-}" ]; then
    mkdir -p "$work/before"
    cp "$WASM_BEFORE_BIN/containerd-shim-wasmtime-v1" "$work/before/containerd-shim-wasmtimebefore-v1"
    cp "$WASM_BEFORE_BIN/libwasmtime.so" "$work/before/"
  fi
  env PATH="$out/bin:$work/before:$bin:$PATH" ${CONTAINERD_ENV:-} "$bin/containerd" --config "$work/config.toml" ${CONTAINERD_ARGS:-} \
    >"$work/containerd.log" 2>&1 &
  containerd_pid=$!
  trap stop_containerd EXIT
  for _ in $(seq 100); do ctr_ version >/dev/null 2>&1 && break; sleep 0.1; done
  ctr_ version >/dev/null || { log "containerd did not start: $(tail -5 "$work/containerd.log")"; exit 1; }
  local tar
  for tar in demo busybox noop noop-wasm; do ctr_ images import "$images/$tar.tar" >/dev/null; done
}

# Kills and deletes every task and container, stops containerd, unmounts and removes its folder.
stop_containerd() {
  set +e
  if [ -n "$containerd_pid" ]; then
    local ids
    ids="$(ctr_ task ls -q 2>/dev/null)"
    for id in $ids; do ctr_ task kill -s SIGKILL "$id"; done >/dev/null 2>&1
    for id in $ids; do ctr_ task delete -f "$id"; done >/dev/null 2>&1
    for id in $(ctr_ container ls -q 2>/dev/null); do ctr_ container delete "$id"; done >/dev/null 2>&1
    kill "$containerd_pid"; wait "$containerd_pid"
    containerd_pid=""
  fi
  if [ -n "$work" ]; then
    grep " $work" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l
    rm -rf "$work"
    work=""
  fi
  # ctr puts each container into the memory cgroup /<namespace>/<id>; empty ones are left behind by runc on SIGKILL races.
  [ -d /sys/fs/cgroup/memory/bench ] && find /sys/fs/cgroup/*/bench -depth -type d -exec rmdir {} + 2>/dev/null
  true
}

ctr_() { PATH="$out/bin:$bin:$PATH" "$bin/ctr" --address "$sock" --namespace bench "$@"; }
stress_() { dotnet "$stress_dll" --address "$sock" --namespace bench "$@"; }

# Milliseconds (with fractions) since an arbitrary point, without forking.
now_ms() { local t=$EPOCHREALTIME; echo "${t/./}" | awk '{printf "%.3f", $1 / 1000}'; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
# percentile P of the numbers on stdin (nearest rank)
percentile() { sort -g | awk -v p="$1" '{a[NR]=$1} END {i = int((p / 100) * NR + 0.999999); if (i < 1) i = 1; print a[i]}'; }

# JSON: json_entry NAME UNIT VALUE EXTRA appends one entry to the array being built in `json_entries`.
json_entries=()
json_entry() {
  json_entries+=("$(printf '  {"name": "%s", "unit": "%s", "value": %s, "extra": "%s"}' "$1" "$2" "$3" "$4")")
}
json_write() { # json_write FILE
  { echo "["; local IFS=$'\n'; printf '%s\n' "${json_entries[@]}" | sed '$!s/$/,/'; echo "]"; } > "$1"
  log "wrote $1"
}
machine_note() {
  echo "cores=$(nproc) load=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' '/') containerd=$("$bin/containerd" --version | awk '{print $3}') date=$(date -u +%FT%TZ)"
}
