#!/usr/bin/env bash
# Checks that the tools a make target is about to use are present, and provides them when it can: the Makefile runs
# it as the first line of a recipe, so it costs nothing when the target is up to date and a few quick lookups when it
# is not. Whatever is missing, as root hack/deps.sh installs it (Debian packages; idempotent, quick when all are
# there); as anyone else it stops, naming what is missing and the command that provides it.
#
#   hack/need.sh <need>...
#     clang    C compiler for the shims' native constructors (Debian's clang)
#     patchelf the WasmEdge sysroot's RUNPATHs and the installed WasmEdge shim's interpreter (Debian's patchelf)
#     wasi     clang for wasm32-wasi: clang, wasm-ld (lld), wasi-libc and libclang-rt-14-dev-wasm32
#     node     node and npm, for the WASI 0.2 test components
#     dotnet   the .NET 10 SDK (not a Debian package: only named, never installed)
#     ctr      containerd's ctr, for `make load` ($CTR; it comes with containerd, which this never installs)
#     deps     every package hack/deps.sh installs (runc, busybox and the rest the tests use)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

missing=() # "<what is missing>|<what provides it>", one per piece
miss() { missing+=("$1|$2"); }
probe() {
  missing=()
  local need
  for need in "$@"; do
    case "$need" in
      clang) command -v clang >/dev/null || miss "clang is" "installs Debian's clang" ;;
      patchelf) command -v patchelf >/dev/null || miss "patchelf is" "installs Debian's patchelf" ;;
      wasi)
        if ! command -v clang >/dev/null; then miss "clang is" "installs Debian's clang"
        else
          # clang prints the bare name when its wasm32-wasi search path has no such file.
          [ -f "$(clang --target=wasm32-wasi -print-file-name=libc.a)" ] || miss "wasi-libc is" "installs Debian's wasi-libc"
          [ -f "$(clang --target=wasm32-wasi -print-libgcc-file-name)" ] \
            || miss "the wasm32 compiler runtime is" "installs Debian's libclang-rt-14-dev-wasm32"
        fi
        command -v wasm-ld >/dev/null || miss "wasm-ld is" "installs Debian's lld" ;;
      node)
        command -v node >/dev/null || miss "node is" "installs Debian's nodejs"
        command -v npm >/dev/null || miss "npm is" "installs Debian's npm" ;;
      dotnet)
        if ! command -v "${DOTNET:-dotnet}" >/dev/null; then
          echo "make: ${DOTNET:-dotnet} is missing; install the .NET 10 SDK and put dotnet on PATH (or set DOTNET=/path/to/dotnet)" >&2
          exit 1
        fi ;;
      ctr)
        if ! command -v "${CTR:-ctr}" >/dev/null; then
          echo "make: ${CTR:-ctr} is missing; it comes with your containerd (Debian's containerd package), or set CTR=/path/to/ctr" >&2
          exit 1
        fi ;;
      deps)
        local pkgs
        pkgs="$(bash "$here/deps.sh" --check)" || miss "the Debian packages ${pkgs//$'\n'/ } are" "installs them" ;;
      *) echo "hack/need.sh: unknown need '$need'" >&2; exit 2 ;;
    esac
  done
}

probe "$@"
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "make: ${missing[0]%%|*} missing; installing the build's Debian packages (hack/deps.sh)" >&2
  bash "$here/deps.sh"
  probe "$@"
  [ ${#missing[@]} -eq 0 ] && exit 0
  for m in "${missing[@]}"; do echo "make: ${m%%|*} still missing after hack/deps.sh (its package is installed: is it on PATH?)" >&2; done
  exit 1
fi
for m in "${missing[@]}"; do
  echo "make: ${m%%|*} missing; run \`sudo make deps\` (${m#*|})" >&2
done
exit 1
