#!/usr/bin/env bash
# Watchdog and cleanup for ONE private test engine (started by test/harness/engine.ts).
#
#   engine-watchdog.sh DIR CGROUP KEEP
#
# Started before the daemons, in its own session, with stdin a pipe from the Node process
# that owns the engine. It blocks reading stdin:
#   "stop"  -> clean up now (PrivateEngine.stop() sends this and waits for us to exit)
#   EOF     -> the owner died (crash, SIGKILL, process.exit): clean up anyway
#   "disarm"-> exit without doing anything
# Cleanup: SIGTERM dockerd (then SIGKILL), kill what is left in the containers and the
# shims, stop containerd, unmount everything under DIR, remove DIR (unless KEEP=1) and the
# engine's private cgroup parent. Processes are found by DIR in their command line (DIR is
# a fresh mkdtemp path, so this matches only this engine's processes), never by name.
set -uo pipefail
trap '' PIPE INT HUP QUIT

dir="${1:?dir}"
cgroup="${2:?cgroup}"
keep="${3:-0}"
[[ "$dir" == /* && "$dir" != / && -d "$dir" ]] || {
  echo "watchdog: refusing bad dir '$dir'" >&2
  exit 2
}

cmd=""
IFS= read -r cmd || cmd="eof"
[[ "$cmd" == disarm ]] && exit 0
if [[ "$cmd" == eof ]]; then
  # Nobody is listening any more: keep quiet so writes cannot fail.
  exec >/dev/null 2>&1
fi

log() { printf 'watchdog[%s]: %s\n' "$dir" "$*" >&2; }

# --- process helpers -------------------------------------------------------------------
# pids whose command line mentions "$dir/" and whose argv0 basename matches $1 (a glob);
# pure bash (no fork per process) so that a scan of /proc stays fast
engine_pids() {
  local pattern="$1" p argv0 cmdline
  local -a args
  for p in /proc/[0-9]*; do
    p="${p#/proc/}"
    [[ "$p" == "$$" || "$p" == "$BASHPID" ]] && continue
    mapfile -d '' -t args 2>/dev/null <"/proc/$p/cmdline" || continue
    ((${#args[@]} > 0)) || continue
    cmdline="${args[*]}"
    [[ "$cmdline" == *"$dir/"* ]] || continue
    argv0="${args[0]##*/}"
    # shellcheck disable=SC2053
    [[ "$argv0" == $pattern ]] && printf '%s\n' "$p"
  done
}

# sets STATE and PARENT from /proc/PID/stat ("pid (comm) state ppid ...")
STATE="" PARENT=""
proc_stat() {
  local stat
  STATE="" PARENT=""
  read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
  read -r STATE PARENT _ <<<"${stat##*) }"
}

children_of() {
  local parent="$1" p
  for p in /proc/[0-9]*; do
    p="${p#/proc/}"
    proc_stat "$p" || continue
    [[ "$PARENT" == "$parent" ]] && printf '%s\n' "$p"
  done
}

alive() { proc_stat "$1" && [[ -n "$STATE" && "$STATE" != Z ]]; }

# stop PID: SIGTERM, wait up to $2 seconds, then SIGKILL
stop_pid() {
  local pid="$1" wait_s="$2" i
  alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < wait_s * 10; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  log "pid $pid ignored SIGTERM for ${wait_s}s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null
  for ((i = 0; i < 50; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
}

status=0

kill_containers() {
  local shim child
  for shim in $(engine_pids 'containerd-shim*'); do
    for child in $(children_of "$shim"); do kill -KILL "$child" 2>/dev/null; done
  done
}

# 1. dockerd. On SIGTERM it stops its containers, waiting each one's stop timeout (10 s by
#    default) for processes that ignore SIGTERM; once it is shutting down (so it restarts
#    nothing) the containers are killed outright: this is a test engine.
mapfile -t dockerds < <(engine_pids dockerd)
any=0
for pid in "${dockerds[@]}"; do kill -TERM "$pid" 2>/dev/null; done
for ((i = 0; i < 10; i++)); do
  any=0
  for pid in "${dockerds[@]}"; do alive "$pid" && any=1; done
  ((any)) || break
  sleep 0.1
done
((any)) && kill_containers
for pid in "${dockerds[@]}"; do stop_pid "$pid" 30; done

# 2. shims left behind (dockerd killed, or containerd restarting them): kill the container
#    init processes (this takes each container's PID namespace down), then the shims.
kill_containers

# 3. containerd
for pid in $(engine_pids containerd); do stop_pid "$pid" 15; done
for shim in $(engine_pids 'containerd-shim*'); do stop_pid "$shim" 5; done

# 4. anything else still naming our directory (docker-proxy, stray helpers)
for pid in $(engine_pids '*'); do stop_pid "$pid" 5; done
if [[ -n "$(engine_pids '*')" ]]; then
  log "processes still alive: $(engine_pids '*' | tr '\n' ' ')"
  status=1
fi

# 5. mounts under DIR, deepest first
mounts_under_dir() {
  local _src mp _rest
  while read -r _src mp _rest; do
    mp="$(printf '%b' "$mp")" # /proc/self/mounts escapes space etc. as \040
    [[ "$mp" == "$dir" || "$mp" == "$dir"/* ]] && printf '%s\n' "$mp"
  done </proc/self/mounts | sort -r
}
for attempt in 1 2 3; do
  mapfile -t mps < <(mounts_under_dir)
  ((${#mps[@]} == 0)) && break
  for mp in "${mps[@]}"; do
    umount "$mp" 2>/dev/null || { ((attempt > 1)) && umount -l "$mp" 2>/dev/null; } || true
  done
done
mapfile -t mps < <(mounts_under_dir)
if ((${#mps[@]} > 0)); then
  log "still mounted, NOT removing $dir: ${mps[*]}"
  status=1
fi

# 6. the engine's private cgroup parent (cgroup v1: one per controller; v2: one)
for cg in /sys/fs/cgroup/"$cgroup" /sys/fs/cgroup/*/"$cgroup"; do
  [[ -d "$cg" ]] || continue
  find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
done

# 7. the directory
if ((${#mps[@]} == 0)) && [[ "$keep" != 1 ]]; then
  rm -rf --one-file-system "$dir" || status=1
fi
exit "$status"
