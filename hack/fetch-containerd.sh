#!/usr/bin/env bash
# Fetches Debian's containerd package for one release line and unpacks it into a cache folder,
# without installing anything system-wide. Prints the folder holding containerd, ctr and the shims.
#
#   hack/fetch-containerd.sh <1.6|1.7|2>
#
# 1.6 comes from bookworm, 1.7 from trixie, 2.x from sid, through a private apt configuration
# (hack/lib/debian-apt.sh: the mirror is this machine's own, so no host name lives in the repository).
# Each package ships containerd, ctr and containerd-shim-runc-v2 (1.x also the v1 shims); runc comes from
# Debian's runc package (hack/deps.sh).
# CONTAINERD_CACHE overrides the cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/runwasi-dotnet/containerd).
set -euo pipefail

version="${1:-${CONTAINERD_VERSION:-1.6}}"
case "$version" in
  1.6) suite=bookworm ;;
  1.7) suite=trixie ;;
  2|2.*) version=2; suite=sid ;;
  *) echo "usage: $0 <1.6|1.7|2>" >&2; exit 2 ;;
esac

cache_root="${CONTAINERD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/runwasi-dotnet/containerd}"
dest="$cache_root/$version"
bin="$dest/usr/bin"

# Fast path: an earlier run left a complete, working unpack behind.
if [ -f "$dest/.complete" ] && [ -x "$bin/containerd" ] && [ -x "$bin/ctr" ]; then
  echo "$bin"
  exit 0
fi

# One fetch at a time per cache: parallel test runs share the apt lists and the unpacked tree.
mkdir -p "$cache_root"
exec 9>"$cache_root/.lock"
flock 9
if [ -f "$dest/.complete" ] && [ -x "$bin/containerd" ] && [ -x "$bin/ctr" ]; then
  echo "$bin"
  exit 0
fi

# shellcheck source=lib/debian-apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/debian-apt.sh"
debian_apt_setup "$cache_root" "$suite"
rm -f "$apt_dir/download"/containerd_*.deb
(cd "$apt_dir/download" && apt-get "${apt_opts[@]}" -qq download containerd >&2)
deb="$(ls "$apt_dir/download"/containerd_*.deb | head -n1)"

tmp="$(mktemp -d "$cache_root/.unpack.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
dpkg-deb -x "$deb" "$tmp"
dpkg-deb -f "$deb" Version > "$tmp/.debian-version"
if [ ! -x "$tmp/usr/bin/containerd" ] || [ ! -x "$tmp/usr/bin/ctr" ]; then
  echo "fetch-containerd: $deb has no usr/bin/containerd or ctr" >&2
  exit 1
fi
"$tmp/usr/bin/containerd" --version >&2
"$tmp/usr/bin/ctr" --version >&2
touch "$tmp/.complete"

# Replace any incomplete earlier unpack.
rm -rf "$dest.old"
[ -e "$dest" ] && mv "$dest" "$dest.old"
mv "$tmp" "$dest"
trap - EXIT
rm -rf "$dest.old"
echo "$bin"
