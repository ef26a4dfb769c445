#!/usr/bin/env bash
# Fetches Debian's containerd package for one release line and unpacks it into a cache folder,
# without installing anything system-wide. Prints the folder holding containerd, ctr and the shims.
#
#   hack/fetch-containerd.sh <1.6|1.7|2>
#
# 1.6 comes from bookworm, 1.7 from trixie, 2.x from sid. The mirror URI and its keyring are read
# at run time from this machine's own apt sources, so no host name lives in the repository.
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

# The first Debian archive source of this machine (skipping the security archive, which has no sid).
# deb822 files are read first, then the one-line format.
read_source() {
  local uri="" keyring=""
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # Split into stanzas; take the first whose URI is not a security archive.
    local line
    uri="" keyring=""
    while IFS= read -r line || [ -n "$line" ]; do
      if [ -z "${line//[[:space:]]/}" ]; then
        if [ -n "$uri" ]; then break; fi
        keyring=""
        continue
      fi
      case "$line" in
        URIs:*) local u="${line#URIs:}"; u="${u#"${u%%[![:space:]]*}"}"; u="${u%% *}"
                case "$u" in *security*) ;; *) uri="$u" ;; esac ;;
        Signed-By:*) local k="${line#Signed-By:}"; keyring="${k//[[:space:]]/}" ;;
      esac
    done < "$f"
    if [ -n "$uri" ]; then
      echo "$uri|$keyring"
      return 0
    fi
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    local rest
    rest="$(grep -E '^[[:space:]]*deb[[:space:]]' "$f" | grep -v security | head -n1 || true)"
    [ -n "$rest" ] || continue
    rest="${rest#*deb}"
    if [[ "$rest" =~ signed-by=([^][:space:]]+) ]]; then keyring="${BASH_REMATCH[1]}"; fi
    rest="$(sed -E 's/\[[^]]*\]//' <<<"$rest")"
    uri="$(awk '{print $1}' <<<"$rest")"
    if [ -n "$uri" ]; then
      echo "$uri|$keyring"
      return 0
    fi
  done
  return 1
}

if ! src="$(read_source)"; then
  echo "fetch-containerd: no Debian source found in /etc/apt/sources.list{,.d}" >&2
  exit 1
fi
uri="${src%%|*}"
keyring="${src#*|}"
[ -n "$keyring" ] || keyring=/usr/share/keyrings/debian-archive-keyring.gpg

# A private apt configuration: its own sources list, lists and package cache, so neither the
# machine's package state nor its sources change.
apt_dir="$cache_root/.apt/$suite"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$apt_dir/download"
cat > "$apt_dir/sources.list" <<EOF
deb [signed-by=$keyring] $uri $suite main
EOF
apt_opts=(
  -o "Dir::Etc::SourceList=$apt_dir/sources.list"
  -o "Dir::Etc::SourceParts=-"
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir"
  -o "Dir::Cache::archives=$apt_dir/archives"
  -o "Dir::Cache::pkgcache="
  -o "Dir::Cache::srcpkgcache="
  -o "APT::Get::List-Cleanup=0"
  -o "Debug::NoLocking=1"
  -o "APT::Sandbox::User=root"
)

apt-get "${apt_opts[@]}" -qq update >&2
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
