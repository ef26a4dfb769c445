#!/usr/bin/env bash
# Installs the Debian packages the build and tests need. None of them starts a service.
#   hack/deps.sh           installs whichever are missing (nothing to do, and no apt-get, when all are there)
#   hack/deps.sh --check   installs nothing: prints the missing ones, one a line, and fails if there are any
set -euo pipefail
# fonts-dejavu-core: the text of the benchmark charts (bench/Charts). nodejs, npm: the toolchain that builds the
# WASI 0.2 test components (tools/components, pinned npm packages). libseccomp2: the shim compiles linux.seccomp
# with it at Create (present on every Debian system; named so that a minimal image gets it too). patchelf: the
# WasmEdge sysroot (hack/fetch-wasmedge.sh) and its installed shim.
pkgs=(runc clang lld wasi-libc libclang-rt-14-dev-wasm32 wabt busybox-static gcc libc6-dev containernetworking-plugins iproute2 fonts-dejavu-core libseccomp2 patchelf)
missing=()
for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
# node and npm build the WASI 0.2 test components. A machine may have them from elsewhere than Debian (a newer
# Node.js whose own package conflicts with Debian's npm): Debian's are installed only when the commands are missing.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ "${1:-}" = --check ]; then
  [ ${#missing[@]} -eq 0 ] || { printf '%s\n' "${missing[@]}"; exit 1; }
  exit 0
fi
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" -ne 0 ]; then
  echo "hack/deps.sh: missing Debian packages ${missing[*]}; run \`sudo make deps\` to install them" >&2
  exit 1
fi
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
