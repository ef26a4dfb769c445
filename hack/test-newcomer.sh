#!/usr/bin/env bash
# The newcomer's first ten minutes, checked: `make demo`, reproducible `make test-image`,
# `make install`/`make uninstall` leaving the prefix as it was, an incremental `make build`, and a missing tool named.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-$PWD/out}
fails=0 passes=0
pass() { echo "PASS: $1"; passes=$((passes + 1)); }
fail() { echo "FAIL: $1"; fails=$((fails + 1)); }
tmp=$(mktemp -d /tmp/newcomer.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# make demo: prints hello and the daemon's song, exits 0, leaves no containerd, shim, mount or socket behind.
# The checks look for what belongs to the demo's own containerd (its folder, the shim sockets its address and
# container ids hash to), so other containerds on the machine cannot fail them.
if make --no-print-directory demo OUT="$out" >"$tmp/demo.log" 2>&1; then
  grep -q 'stdout| hello' "$tmp/demo.log" && grep -q 'never ends' "$tmp/demo.log" \
    && pass "make demo printed hello and the song" || { fail "make demo output"; cat "$tmp/demo.log"; }
else
  fail "make demo exited non-zero"; cat "$tmp/demo.log"
fi
demo_addr=$(sed -n 's/^  socket \(.*\), namespace .*/\1/p' "$tmp/demo.log" | head -1)
demo_ns=$(sed -n 's/^  socket .*, namespace \(.*\)$/\1/p' "$tmp/demo.log" | head -1)
if [ -z "$demo_addr" ] || [ -z "$demo_ns" ]; then
  fail "make demo did not print its containerd's socket and namespace"
else
  demo_dir=$(dirname "$demo_addr")
  pgrep -f "$demo_dir" >/dev/null && { fail "make demo left processes"; pgrep -fa "$demo_dir"; } || pass "make demo left no process"
  left=""
  for id in demo-echo demo-daemon; do
    sock="/run/containerd/s/$(printf '%s' "$demo_addr/$demo_ns/$id" | sha256sum | cut -d' ' -f1)"
    [ -e "$sock" ] && left="$left $sock"
  done
  [ -z "$left" ] && pass "make demo left no shim socket" || fail "make demo left shim sockets:$left"
  if grep -qF "$demo_dir" /proc/self/mountinfo; then fail "make demo left mounts"; grep -F "$demo_dir" /proc/self/mountinfo
  else pass "make demo left no mount"; fi
  [ ! -e "$demo_dir" ] && pass "make demo removed its state folder" || fail "make demo left its state folder $demo_dir"
fi

# make test-image is reproducible.
rm -f "$out/images/wasi-demo-app.tar"
make --no-print-directory test-image OUT="$out" >/dev/null && a=$(sha256sum "$out/images/wasi-demo-app.tar" | cut -d' ' -f1)
rm -f "$out/images/wasi-demo-app.tar"
make --no-print-directory test-image OUT="$out" >/dev/null && b=$(sha256sum "$out/images/wasi-demo-app.tar" | cut -d' ' -f1)
[ -n "${a:-}" ] && [ "$a" = "${b:-}" ] && pass "two make test-image runs give $a" || fail "make test-image differs: ${a:-none} vs ${b:-none}"

# make install / make uninstall leave the prefix as it was, including files that were there before.
prefix="$tmp/prefix"; mkdir -p "$prefix/bin" "$prefix/share"; echo keep >"$prefix/bin/other-tool"
snapshot() { (cd "$prefix" && find . -printf '%p %m %s\n' | sort); }
snapshot >"$tmp/before"
make --no-print-directory install PREFIX="$prefix" OUT="$out" >/dev/null
[ -x "$prefix/bin/containerd-shim-wasmtime-v1" ] && "$prefix/bin/containerd-shim-wasmtime-v1" -v >/dev/null \
  && pass "make install put a working shim in PREFIX/bin" || fail "installed shim missing or not runnable"
[ -x "$prefix/bin/containerd-shim-wasmedge-v1" ] && "$prefix/bin/containerd-shim-wasmedge-v1" -v >/dev/null \
  && pass "make install put a working WasmEdge shim in PREFIX/bin" || fail "installed WasmEdge shim missing or not runnable"
make --no-print-directory uninstall PREFIX="$prefix" OUT="$out" >/dev/null
snapshot >"$tmp/after"
diff -u "$tmp/before" "$tmp/after" && pass "make uninstall restored the prefix" || fail "make uninstall left the prefix changed"

# A second make build with no change does not publish the shim again.
make --no-print-directory build OUT="$out" >/dev/null
stamp=$(stat -c %Y "$out/bin/containerd-shim-wasmtime-v1")
sleep 1
make --no-print-directory build OUT="$out" >/dev/null
[ "$(stat -c %Y "$out/bin/containerd-shim-wasmtime-v1")" = "$stamp" ] && pass "incremental make build kept the shim" || fail "make build republished the shim without a change"

# A missing tool stops make with its name and the command that provides it, not "clang: command not found": make build
# as nobody (who cannot install anything) into an empty OUT, with a PATH that has what make runs but no clang.
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
  mkdir -p "$tmp/path" "$tmp/nobody-out" "$tmp/repo/tools" && chmod 755 "$tmp" "$tmp/path"
  # nobody cannot read a clone in a private folder (mktemp -d is 0700): a readable copy of what the first recipe needs.
  cp -r Makefile hack "$tmp/repo/" && cp -r tools/wasi-demo-app tools/wasi-malloc-probe "$tmp/repo/tools/"
  chmod -R a+rX "$tmp/repo" && chown nobody "$tmp/nobody-out"
  for c in make bash env id dirname sed find git sha256sum cut printf mkdir cat grep dpkg-query dotnet; do
    command -v "$c" >/dev/null && ln -sf "$(command -v "$c")" "$tmp/path/$c"
  done
  setpriv --reuid=nobody --regid=nogroup --clear-groups env -i PATH="$tmp/path" HOME=/nonexistent \
    make --no-print-directory -C "$tmp/repo" build OUT="$tmp/nobody-out" >"$tmp/noclang.log" 2>&1
  rc=$?
  if [ "$rc" -ne 0 ] && grep -qF 'make: clang is missing; run `sudo make deps` (installs Debian'"'"'s clang)' "$tmp/noclang.log"; then
    pass "make build without clang names it and sudo make deps"
  else
    fail "make build without clang (exit $rc)"; cat "$tmp/noclang.log"
  fi
fi

echo "newcomer: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
