#!/usr/bin/env bash
# Fetches Debian trixie's libwasmedge0 with its whole dependency closure (glibc included) and unpacks it into a
# cache folder, without installing anything system-wide: a sysroot the WasmEdge shim runs on where the host's glibc
# is older than the 2.38 libwasmedge0 needs (bookworm has 2.36). Prints the sysroot's library folder.
#
#   hack/fetch-wasmedge.sh
#
# On a host with glibc 2.38 or later, `apt install libwasmedge0` is all the shim needs and this is not used.
# Every shared library of the sysroot that has no RUNPATH gets $ORIGIN, so libwasmedge's dependencies (libLLVM's
# among them) come from the sysroot and never from the host. The packages come through a private apt configuration
# (hack/lib/debian-apt.sh). WASMEDGE_CACHE overrides the cache root
# (default ${XDG_CACHE_HOME:-$HOME/.cache}/runwasi-dotnet/wasmedge).
set -euo pipefail

# The shim's bindings are written against the 0.14 C API: the suite must offer that upstream version.
version="${WASMEDGE_VERSION:-0.14.1}"
suite=trixie
package=libwasmedge0

cache_root="${WASMEDGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/runwasi-dotnet/wasmedge}"
dest="$cache_root/$version"
lib="$dest/usr/lib/x86_64-linux-gnu"

complete() { [ -f "$dest/.complete" ] && [ -f "$lib/libwasmedge.so.0" ]; }

# Fast path: an earlier run left a complete unpack behind.
if complete; then
  echo "$lib"
  exit 0
fi

mkdir -p "$cache_root"
exec 9>"$cache_root/.lock"
flock 9
if complete; then
  echo "$lib"
  exit 0
fi

command -v patchelf >/dev/null || { echo "fetch-wasmedge: patchelf is missing (hack/deps.sh installs it)" >&2; exit 1; }

# shellcheck source=lib/debian-apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/debian-apt.sh"
debian_apt_setup "$cache_root" "$suite"

candidate="$(apt-cache "${apt_opts[@]}" show "$package" 2>/dev/null | sed -n 's/^Version: //p' | head -n1)"
case "$candidate" in
  "$version"*|*:"$version"*) ;;
  *) echo "fetch-wasmedge: $suite offers $package ${candidate:-(none)}, not $version" >&2; exit 1 ;;
esac

# The closure, as apt would install it on an empty system (the private configuration's status file is /dev/null):
# the libraries and the C runtime they were built against, no recommends.
mapfile -t closure < <(apt-get "${apt_opts[@]}" -s -qq --no-install-recommends install "$package" | awk '$1 == "Inst" {print $2}')
if [ ${#closure[@]} -eq 0 ]; then
  echo "fetch-wasmedge: could not resolve the dependencies of $package in $suite" >&2
  exit 1
fi
echo "fetch-wasmedge: ${#closure[@]} packages: ${closure[*]}" >&2

download="$apt_dir/download/wasmedge-$version"
rm -rf "$download"
mkdir -p "$download"
(cd "$download" && apt-get "${apt_opts[@]}" -qq download "${closure[@]}" >&2)

tmp="$(mktemp -d "$cache_root/.unpack.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
for deb in "$download"/*.deb; do
  dpkg-deb -x "$deb" "$tmp"
  dpkg-deb -f "$deb" Package Version | paste -sd' ' >> "$tmp/.packages"
done
rm -rf "$download"

tmp_lib="$tmp/usr/lib/x86_64-linux-gnu"
if [ ! -f "$tmp_lib/libwasmedge.so.0" ]; then
  echo "fetch-wasmedge: the unpacked $package has no usr/lib/x86_64-linux-gnu/libwasmedge.so.0" >&2
  exit 1
fi
# $ORIGIN on every library that has no search path of its own; the loader itself is left alone.
find "$tmp" -type f -name '*.so*' ! -name 'ld-linux*' -print0 | while IFS= read -r -d '' so; do
  head -c4 "$so" | grep -q $'\x7fELF' || continue
  if [ -z "$(patchelf --print-rpath "$so" 2>/dev/null)" ]; then
    patchelf --set-rpath '$ORIGIN' "$so"
  fi
done
touch "$tmp/.complete"

# Replace any incomplete earlier unpack.
rm -rf "$dest.old"
[ -e "$dest" ] && mv "$dest" "$dest.old"
mv "$tmp" "$dest"
trap - EXIT
rm -rf "$dest.old"
echo "$lib"
