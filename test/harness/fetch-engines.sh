#!/usr/bin/env bash
# Fetch the newer Docker engine the engine tests can run against (issue #9):
# Debian 13 ("trixie") docker.io 26.1.5, containerd 1.7.24 and docker-compose 2.26.1.
#
# The packages are downloaded with `apt-get download` through a TEMPORARY sources list
# (the machine's own apt sources, lists and caches are never touched) and unpacked with
# `dpkg -x` into .cache/engines/26.1/ -- they are NOT installed, so the machine keeps its
# own libc, runc and docker.io. Idempotent: does nothing when the cache is complete.
#
# Environment:
#   SHIPSHAPE_ENGINE_CACHE   cache root (default: <repo>/.cache/engines)
#   SHIPSHAPE_DEBIAN_MIRROR  Debian mirror URL (default: the one in /etc/apt/sources.list*)
#   SHIPSHAPE_FETCH_FORCE=1  re-download and re-extract
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache_root="${SHIPSHAPE_ENGINE_CACHE:-$repo/.cache/engines}"
dest="$cache_root/26.1"
work="$cache_root/.apt-trixie"
suite=trixie

# package  upstream-version-prefix (matched against the Debian version)
packages=(docker.io containerd docker-compose)
declare -A want=([docker.io]=26.1.5 [containerd]=1.7.24 [docker-compose]=2.26.1)

log() { printf 'fetch-engines: %s\n' "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

stamp_text() {
  local p
  for p in "${packages[@]}"; do printf '%s=%s\n' "$p" "${want[$p]}"; done
}

if [[ -f "$dest/.complete" && "${SHIPSHAPE_FETCH_FORCE:-0}" != 1 ]] &&
  [[ "$(grep -v '^#' "$dest/.complete" | cut -d' ' -f1)" == "$(stamp_text)" ]]; then
  log "already extracted in $dest ($(tr '\n' ' ' <"$dest/.complete"))"
  exit 0
fi

for tool in apt-get apt-cache dpkg dpkg-deb; do
  command -v "$tool" >/dev/null || die "$tool not found (this script needs a Debian-like host)"
done

# --- which mirror: the Debian archive the machine already uses --------------------------
find_mirror() {
  local f uri
  if [[ -n "${SHIPSHAPE_DEBIAN_MIRROR:-}" ]]; then
    printf '%s\n' "${SHIPSHAPE_DEBIAN_MIRROR%/}"
    return
  fi
  shopt -s nullglob
  # deb822 .sources files: URIs: lines; one-line .list files: "deb [opts] URI suite ..."
  for f in /etc/apt/sources.list.d/*.sources; do
    while read -r uri; do
      [[ "$uri" == */debian ]] && {
        printf '%s\n' "$uri"
        return
      }
    done < <(awk 'tolower($1)=="uris:" { for (i = 2; i <= NF; i++) print $i }' "$f")
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] || continue
    while read -r uri; do
      [[ "$uri" == */debian ]] && {
        printf '%s\n' "$uri"
        return
      }
    done < <(awk '$1=="deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/ && $i ~ /:\/\//) { print $i; break } }' "$f")
  done
  printf '%s\n' http://deb.debian.org/debian
}
mirror="$(find_mirror)"
mirror="${mirror%/}"

keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[[ -f "$keyring" ]] || die "$keyring missing (install debian-archive-keyring)"

mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs" "$work/empty"
sources="$work/trixie.sources"
cat >"$sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite
Components: main
Signed-By: $keyring
EOF

# Everything apt reads or writes besides the signed archive goes through these options:
# no machine sources, its own lists/caches, no pinning from the machine.
apt_opts=(
  -o "Dir::Etc::sourcelist=$sources"
  -o "Dir::Etc::sourceparts=-"
  -o "Dir::State::Lists=$work/lists"
  -o "Dir::Cache=$work/cache"
  -o "Dir::Cache::archives=$work/cache/archives"
  -o "Dir::Cache::pkgcache="
  -o "Dir::Cache::srcpkgcache="
  -o "Dir::Etc::preferences=/dev/null"
  -o "Dir::Etc::preferencesparts=$work/empty"
  -o "APT::Sandbox::User=root"
  -o "Acquire::Languages=none"
  -o "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false"
)

log "updating the $suite index from $mirror (private lists in $work)"
apt-get "${apt_opts[@]}" -qq update >&2 || die "apt-get update for $suite failed"

# Pick, for each package, the trixie version whose upstream part is the wanted one.
declare -A chosen=()
for p in "${packages[@]}"; do
  v=""
  while read -r cand; do
    up="${cand#*:}"  # drop epoch
    up="${up%-*}"    # drop Debian revision
    up="${up%%+*}"   # drop +dfsg1 etc.
    up="${up%%~*}"   # drop ~ds1 etc.
    if [[ "$up" == "${want[$p]}" ]]; then
      v="$cand"
      break
    fi
  done < <(apt-cache "${apt_opts[@]}" madison "$p" | awk -F'|' '{ gsub(/ /, "", $2); print $2 }')
  [[ -n "$v" ]] || die "no $p ${want[$p]} in $suite (have: $(apt-cache "${apt_opts[@]}" madison "$p" | awk -F'|' '{ print $2 }' | tr -d ' ' | tr '\n' ' '))"
  chosen[$p]="$v"
done

log "downloading: $(for p in "${packages[@]}"; do printf '%s=%s ' "$p" "${chosen[$p]}"; done)"
rm -f "$work/debs/"*.deb
(
  cd "$work/debs"
  args=()
  for p in "${packages[@]}"; do args+=("$p=${chosen[$p]}"); done
  apt-get "${apt_opts[@]}" -qq download "${args[@]}" >&2
) || die "apt-get download failed"

# Extract into a fresh directory next to the destination, then swap it in.
tmp="$dest.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
for deb in "$work/debs/"*.deb; do
  log "extracting $(basename "$deb")"
  dpkg -x "$deb" "$tmp"
done

for bin in usr/sbin/dockerd usr/bin/containerd usr/bin/containerd-shim-runc-v2 usr/bin/docker-compose; do
  [[ -x "$tmp/$bin" ]] || die "$bin missing from the extracted packages"
done
# The package ships compose v2 as usr/libexec/docker/cli-plugins/docker-compose (the CLI
# plugin) with usr/bin/docker-compose linking to it; the harness links the plugin into
# each private engine's DOCKER_CONFIG/cli-plugins.
[[ -x "$tmp/usr/libexec/docker/cli-plugins/docker-compose" ]] || die "compose CLI plugin missing"

# Quick sanity check that the binaries run on this machine's libc.
"$tmp/usr/sbin/dockerd" --version >&2 || die "the extracted dockerd does not run here"
"$tmp/usr/bin/containerd" --version >&2 || die "the extracted containerd does not run here"
"$tmp/usr/bin/docker-compose" version >&2 || die "the extracted docker-compose does not run here"

{
  for p in "${packages[@]}"; do printf '%s=%s %s\n' "$p" "${want[$p]}" "${chosen[$p]}"; done
} >"$tmp/.complete"

rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
log "done: $dest"
