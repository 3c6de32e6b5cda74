#!/usr/bin/env bash
# Build (once) a Debian 12 ("bookworm") root filesystem with the real python3 (3.11) for the
# engine test images (test/harness/python.ts), without a container registry:
#
#   1. a PRIVATE apt setup (own sources, lists, caches and an EMPTY dpkg status; the machine's
#      apt state is never touched) resolves the dependency closure of python3 + base-files +
#      base-passwd the way apt would install it on an empty system (`apt-get -s install`);
#   2. `apt-get download` fetches those .debs (~45 packages, ~18 MB);
#   3. each .deb is unpacked into a merged-/usr root (bin, sbin, lib, lib64 -> usr/...), and
#      /var/lib/dpkg/status + info/<pkg>.{list,md5sums,conffiles,...} are written from the
#      packages' control data as dpkg itself would (`dpkg -l`, `dpkg -L`, `dpkg -S` work);
#   4. what the maintainer scripts would have done and matters here: /etc/passwd and
#      /etc/group from base-passwd's masters, ldconfig, the stdlib byte-compiled (__pycache__),
#      /usr/local/lib/python3.11/dist-packages (where pip installs on Debian); plus the
#      machine's static busybox as /usr/bin/busybox with a link per applet that no package
#      provides (sh, ls, du, stat, ...), and /tmp, /root, /proc, /sys, /dev, /run;
#   5. the root is checked (chroot: python3 -c 'import json, os'; dpkg -l) and packed into
#      root.tar (numeric owners, sorted names).
#
# Cache: $cache/<key>/{root/,root.tar,packages,.complete}, <key> from the resolved package
# versions, this script and the busybox binary; $cache/current names the newest complete one.
# Idempotent and offline once built: with a complete current build it prints its root.tar and
# exits without any network access. --refresh (or SHIPSHAPE_PYTHON_ROOT_REFRESH=1) resolves the
# versions again (new Debian point release / security update -> new key -> new build).
# Serialized with flock, so parallel test runs can all call it. Needs root (chroot, owners).
#
# Prints the path of root.tar on stdout (the only stdout line); progress goes to stderr.
#
# Environment:
#   SHIPSHAPE_PYTHON_ROOT_CACHE       cache dir (default: <repo>/.cache/python-root)
#   SHIPSHAPE_DEBIAN_MIRROR           Debian mirror (default: the machine's, from /etc/apt)
#   SHIPSHAPE_DEBIAN_SECURITY_MIRROR  security mirror, or "none" (default: the machine's, if any)
#   SHIPSHAPE_BUSYBOX                 static busybox binary (default /bin/busybox)
#   SHIPSHAPE_PYTHON_ROOT_REFRESH=1   same as --refresh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${SHIPSHAPE_PYTHON_ROOT_CACHE:-$repo/.cache/python-root}"
busybox="${SHIPSHAPE_BUSYBOX:-/bin/busybox}"
suite=bookworm
arch=amd64
# what gets installed (with its Depends/Pre-Depends closure, no Recommends)
roots=(python3 base-files base-passwd)

refresh="${SHIPSHAPE_PYTHON_ROOT_REFRESH:-0}"
for arg in "$@"; do
  case "$arg" in
    --refresh) refresh=1 ;;
    *)
      echo "usage: $0 [--refresh]" >&2
      exit 2
      ;;
  esac
done

log() { printf 'make-python-root: %s\n' "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

[[ "$(uname -m)" == x86_64 ]] || die "only amd64 roots are made (this is $(uname -m))"
((EUID == 0)) || die "needs root (chroot, file owners)"
for tool in apt-get dpkg-deb dpkg tar flock chroot sha256sum md5sum awk; do
  command -v "$tool" >/dev/null || die "$tool not found (this script needs a Debian-like host)"
done
[[ -x "$busybox" ]] || die "$busybox missing (apt-get install busybox-static)"
command -v ldconfig >/dev/null || [[ -x /sbin/ldconfig ]] || die "ldconfig not found"
ldconfig_bin="$(command -v ldconfig || echo /sbin/ldconfig)"

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock -w 900 9 || die "another build holds $cache/.lock for more than 15 min"

recipe_sha="$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-64)"
busybox_sha="$(sha256sum "$busybox" | cut -c1-64)"

# --- fast path: a complete current build of this recipe -------------------------------------
current_ok() {
  local key dir
  [[ -f "$cache/current" ]] || return 1
  key="$(cat "$cache/current")"
  dir="$cache/$key"
  [[ -n "$key" && -f "$dir/.complete" && -f "$dir/root.tar" ]] || return 1
  grep -qx "recipe=$recipe_sha" "$dir/.complete" && grep -qx "busybox=$busybox_sha" "$dir/.complete"
}
if [[ "$refresh" != 1 ]] && current_ok; then
  log "cached: $cache/$(cat "$cache/current")"
  printf '%s\n' "$cache/$(cat "$cache/current")/root.tar"
  exit 0
fi

t0=$SECONDS
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[[ -f "$keyring" ]] || die "$keyring missing (install debian-archive-keyring)"

# --- mirrors: the Debian archive the machine already uses -----------------------------------
# every URI of the machine's sources (deb822 .sources and one-line .list files)
machine_uris() {
  local f
  shopt -s nullglob
  for f in /etc/apt/sources.list.d/*.sources; do
    awk 'tolower($1)=="uris:" { for (i = 2; i <= NF; i++) print $i }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] || continue
    awk '$1=="deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/ && $i ~ /:\/\//) { print $i; break } }' "$f"
  done
}
first_uri_ending() { machine_uris | sed 's#/*$##' | grep -m1 -E "/$1\$" || true; }
mirror="${SHIPSHAPE_DEBIAN_MIRROR:-$(first_uri_ending debian)}"
mirror="${mirror:-http://deb.debian.org/debian}"
security="${SHIPSHAPE_DEBIAN_SECURITY_MIRROR:-$(first_uri_ending debian-security)}"
[[ "$security" == none ]] && security=""

work="$cache/.apt"
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/empty" "$work/state"
: >"$work/state/status"
sources="$work/bookworm.sources"
{
  printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: %s\n' \
    "${mirror%/}" "$suite" "$suite" "$keyring"
  if [[ -n "$security" ]]; then
    printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: %s\n' \
      "${security%/}" "$suite" "$keyring"
  fi
} >"$sources"

# Everything apt reads or writes besides the signed archive goes through these options: no
# machine sources, own lists/caches, no pinning, and an empty dpkg status (a blank system).
apt_opts=(
  -o "Dir::Etc::sourcelist=$sources"
  -o "Dir::Etc::sourceparts=-"
  -o "Dir::State::Lists=$work/lists"
  -o "Dir::State::status=$work/state/status"
  -o "Dir::Cache=$work/cache"
  -o "Dir::Cache::archives=$work/cache/archives"
  -o "Dir::Cache::pkgcache="
  -o "Dir::Cache::srcpkgcache="
  -o "Dir::Etc::preferences=/dev/null"
  -o "Dir::Etc::preferencesparts=$work/empty"
  -o "APT::Architecture=$arch"
  -o "APT::Architectures::=$arch"
  -o "APT::Sandbox::User=root"
  -o "Acquire::Languages=none"
  -o "Acquire::Retries=3"
  -o "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false"
)

log "updating the $suite index from ${mirror%/}${security:+ and ${security%/}} (private lists in $work)"
apt-get "${apt_opts[@]}" -qq update >&2 || die "apt-get update for $suite failed"

# The closure, as apt would install it on an empty system: "Inst <pkg> (<version> <origin>...)".
mapfile -t pkgs < <(
  apt-get "${apt_opts[@]}" -s --no-install-recommends install "${roots[@]}" |
    awk '$1 == "Inst" { v = $3; sub(/^\(/, "", v); print $2 "=" v }' | sort
)
((${#pkgs[@]} > 0)) || die "apt-get -s install ${roots[*]} resolved nothing"
py_version=""
for p in "${pkgs[@]}"; do [[ "${p%%=*}" == python3.11-minimal ]] && py_version="${p#*=}"; done
[[ -n "$py_version" ]] || die "python3.11-minimal is not in the closure: ${pkgs[*]}"

key_sha="$(printf '%s\n' "${pkgs[@]}" "recipe=$recipe_sha" "busybox=$busybox_sha" | sha256sum | cut -c1-12)"
key="py${py_version//[^A-Za-z0-9.+-]/_}-$key_sha"
dest="$cache/$key"
if [[ -f "$dest/.complete" && -f "$dest/root.tar" ]]; then
  printf '%s\n' "$key" >"$cache/current.tmp" && mv "$cache/current.tmp" "$cache/current"
  log "up to date: $dest"
  printf '%s\n' "$dest/root.tar"
  exit 0
fi

log "building $key: ${#pkgs[@]} packages"
tmp="$dest.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp/debs" "$tmp/ctl"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp/debs" && apt-get "${apt_opts[@]}" -qq download "${pkgs[@]}" >&2) ||
  die "apt-get download failed"
t_download=$((SECONDS - t0))

root="$tmp/root"
mkdir -p "$root"/usr/{bin,sbin,lib,lib64}
# merged /usr, as debootstrap makes it for bookworm
for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done
admin="$root/var/lib/dpkg"
mkdir -p "$admin"/{info,updates,triggers,alternatives,parts}
: >"$admin/available"
: >"$admin/triggers/Unincorp"
: >"$admin/diversions"
: >"$admin/statoverride"
: >"$admin/lock"
: >"$admin/lock-frontend"
: >"$admin/triggers/Lock"
status="$tmp/status"
: >"$status"

# One status stanza in dpkg's field order, from a control file, conffiles and the root.
# Usage: stanza <control> <conffiles-or-/dev/null>
stanza() {
  awk -v root="$root" -v conffiles="$2" '
    BEGIN {
      n = split("Package Essential Status Priority Section Installed-Size Origin Maintainer Bugs Architecture Multi-Arch Source Version Config-Version Replaces Provides Depends Pre-Depends Recommends Suggests Breaks Conflicts Enhances Conffiles Description", order, " ")
      for (i = 1; i <= n; i++) known[order[i]] = 1
      while ((getline line < conffiles) > 0) {
        if (line !~ /^\//) continue  # "remove-on-upgrade /etc/..." and the like
        sum = "-"
        cmd = "md5sum \"" root line "\" 2>/dev/null"
        if ((cmd | getline out) > 0) { split(out, f, " "); sum = f[1] }
        close(cmd)
        cf = cf "\n " line " " sum
      }
      if (cf != "") value["Conffiles"] = cf
    }
    /^[^ \t][^:]*:/ {
      name = substr($0, 1, index($0, ":") - 1)
      rest = substr($0, index($0, ":") + 1)
      value[name] = rest
      if (!(name in known)) extra[++nx] = name
      next
    }
    /^[ \t]/ { value[name] = value[name] "\n" $0; next }
    END {
      value["Status"] = " install ok installed"
      for (i = 1; i <= n; i++) {
        k = order[i]
        if (!(k in value)) continue
        print k ":" value[k]
      }
      for (i = 1; i <= nx; i++) print extra[i] ":" value[extra[i]]
      print ""
    }
  ' "$1"
}

declare -A info_name=()
for deb in "$tmp/debs/"*.deb; do
  pkg="$(dpkg-deb -f "$deb" Package)"
  ma="$(dpkg-deb -f "$deb" Multi-Arch)"
  parch="$(dpkg-deb -f "$deb" Architecture)"
  name="$pkg"
  [[ "$ma" == same ]] && name="$pkg:$parch"
  info_name[$pkg]="$name"
  ctl="$tmp/ctl/$pkg"
  dpkg-deb -e "$deb" "$ctl"
  # the files, and their list as dpkg records it ("/." for the root, no trailing slashes)
  dpkg-deb --fsys-tarfile "$deb" |
    tar -x -v --keep-directory-symlink --numeric-owner -p -C "$root" -f - |
    sed -e 's#^\./$#/.#' -e 's#^\./#/#' -e 's#/$##' >"$admin/info/$name.list"
  for f in "$ctl"/*; do
    case "$(basename "$f")" in control) continue ;; esac
    cp -p "$f" "$admin/info/$name.$(basename "$f")"
  done
done
# status stanzas sorted by package name, like dpkg writes them
for pkg in $(printf '%s\n' "${!info_name[@]}" | sort); do
  ctl="$tmp/ctl/$pkg"
  stanza "$ctl/control" "$([[ -f "$ctl/conffiles" ]] && echo "$ctl/conffiles" || echo /dev/null)" >>"$status"
done
cp "$status" "$admin/status"
cp "$status" "$admin/status-old"
printf '%s\n' "$arch" >"$admin/arch"
t_unpack=$((SECONDS - t0))

# --- what the maintainer scripts would do (the parts that matter here) ----------------------
install -d -m 0755 "$root"/{dev,proc,sys,run,home,srv,opt,mnt,media,boot,var/tmp}
install -d -m 0700 "$root/root"
install -d -m 1777 "$root/tmp"
chmod 1777 "$root/var/tmp"
# base-passwd postinst: /etc/passwd and /etc/group from the masters on a new system
cp "$root/usr/share/base-passwd/passwd.master" "$root/etc/passwd"
cp "$root/usr/share/base-passwd/group.master" "$root/etc/group"
chmod 0644 "$root/etc/passwd" "$root/etc/group"
# base-files postinst: a few files it copies into place on a new system
for f in nsswitch.conf profile; do
  [[ -f "$root/usr/share/base-files/$f" && ! -e "$root/etc/$f" ]] &&
    cp "$root/usr/share/base-files/$f" "$root/etc/$f"
done
[[ -f "$root/usr/share/base-files/dot.profile" ]] && cp "$root/usr/share/base-files/dot.profile" "$root/root/.profile"
# libc-bin's /etc/ld.so.conf (libc-bin itself is not needed), then the libc6 trigger: ldconfig
[[ -e "$root/etc/ld.so.conf" ]] || printf 'include /etc/ld.so.conf.d/*.conf\n\n' >"$root/etc/ld.so.conf"
"$ldconfig_bin" -r "$root"
# where pip installs for Debian's python (site.py puts it first on sys.path)
install -d -m 0755 "$root/usr/local/lib/python3.11/dist-packages"
# busybox: /usr/bin/busybox and a link for every applet no package provides
cp "$busybox" "$root/usr/bin/busybox"
chmod 0755 "$root/usr/bin/busybox"
while read -r applet; do
  [[ "$applet" =~ ^[A-Za-z0-9_.[-]+$ && "$applet" != busybox ]] || continue
  for d in usr/bin usr/sbin; do [[ -e "$root/$d/$applet" || -L "$root/$d/$applet" ]] && continue 2; done
  ln -s busybox "$root/usr/bin/$applet"
done < <("$busybox" --list)
[[ -L "$root/usr/bin/sh" || -e "$root/usr/bin/sh" ]] || die "no /bin/sh after the busybox links"
# python3.11's postinst: byte-compile the standard library (Debian ships no .pyc files)
chroot "$root" /usr/bin/python3.11 -E -S -m compileall -q -j 1 /usr/lib/python3.11 >&2 ||
  die "byte-compiling the standard library failed"
t_setup=$((SECONDS - t0))

# --- checks ---------------------------------------------------------------------------------
out="$(chroot "$root" /usr/bin/python3 -c "import json, os, ssl, sqlite3, sys; print('ok', sys.version.split()[0])")" ||
  die "python3 does not run in the new root"
log "python3 in the root: $out"
[[ "$out" == "ok 3.11."* ]] || die "unexpected python3 output: $out"
n_installed="$(dpkg-query --admindir="$admin" -W -f '${db:Status-Abbrev}\n' | grep -c '^ii' || true)"
((n_installed == ${#pkgs[@]})) || die "dpkg-query sees $n_installed installed packages, not ${#pkgs[@]}"
dpkg-query --admindir="$admin" -L python3.11-minimal | grep -qx /usr/bin/python3.11 ||
  die "dpkg-query -L python3.11-minimal does not list /usr/bin/python3.11"

tar -c --numeric-owner --sort=name -f "$tmp/root.tar" -C "$root" .
printf '%s\n' "${pkgs[@]}" >"$tmp/packages"
rm -rf "$tmp/debs" "$tmp/ctl" "$tmp/status"
{
  printf '# %s\n' "$(date -u +%FT%TZ) ${#pkgs[@]} packages from ${mirror%/}${security:+ + ${security%/}}"
  printf 'recipe=%s\nbusybox=%s\n' "$recipe_sha" "$busybox_sha"
  printf '%s\n' "${pkgs[@]}"
} >"$tmp/.complete"

rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
printf '%s\n' "$key" >"$cache/current.tmp" && mv "$cache/current.tmp" "$cache/current"
# older builds are of no further use
for old in "$cache"/py*; do
  [[ -d "$old" && "$old" != "$dest" ]] && rm -rf "$old"
done
log "done in $((SECONDS - t0)) s (download ${t_download} s, unpack $((t_unpack - t_download)) s, setup $((t_setup - t_unpack)) s): $dest ($(du -sh "$dest/root" | cut -f1) root, $(du -sh "$dest/root.tar" | cut -f1) tar)"
printf '%s\n' "$dest/root.tar"
