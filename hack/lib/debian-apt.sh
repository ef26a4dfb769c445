# Sourced by the hack/fetch-*.sh scripts: a private apt configuration for one Debian suite, so packages of another
# release can be downloaded without changing this machine's package state or its sources.
#
#   source hack/lib/debian-apt.sh
#   debian_apt_setup <cache root> <suite>     # sets apt_dir and the array apt_opts, runs apt-get update
#   apt-get "${apt_opts[@]}" download …
#
# The mirror URI and its keyring are read at run time from this machine's own apt sources, so no host name lives in
# the repository.

# The first Debian archive source of this machine (skipping the security archive, which has no sid).
# deb822 files are read first, then the one-line format. Prints "<uri>|<keyring>".
debian_apt_read_source() {
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

# Its own sources list, lists and package cache under <cache root>/.apt/<suite>; sets apt_dir and apt_opts.
debian_apt_setup() {
  local cache_root="$1" suite="$2" src uri keyring
  if ! src="$(debian_apt_read_source)"; then
    echo "${0##*/}: no Debian source found in /etc/apt/sources.list{,.d}" >&2
    return 1
  fi
  uri="${src%%|*}"
  keyring="${src#*|}"
  [ -n "$keyring" ] || keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  apt_dir="$cache_root/.apt/$suite"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$apt_dir/download"
  cat > "$apt_dir/sources.list" <<EOF
deb [signed-by=$keyring] $uri $suite main
EOF
  apt_opts=(
    -o "Dir::Etc::SourceList=$apt_dir/sources.list"
    -o "Dir::Etc::SourceParts=-"
    -o "Dir::State::Lists=$apt_dir/lists"
    -o "Dir::State::status=/dev/null"
    -o "Dir::Cache=$apt_dir"
    -o "Dir::Cache::archives=$apt_dir/archives"
    -o "Dir::Cache::pkgcache="
    -o "Dir::Cache::srcpkgcache="
    -o "APT::Get::List-Cleanup=0"
    -o "Debug::NoLocking=1"
    -o "APT::Sandbox::User=root"
  )
  apt-get "${apt_opts[@]}" -qq update >&2
}
