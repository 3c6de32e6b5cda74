/**
 * Pure vocabulary of asset mounts shared by migrate-assets' preflight and doctor: what state a
 * mount is in and what it means, which containers bind a source and whether they can read it.
 */
import { isUnder } from './paths.js'
import type { Refusal } from './refusal.js'

export type MountState =
  /** userId: the FUSE mount's owner (user_id=), null when not FUSE */
  | { kind: 'live'; fsType: string; allowOther: boolean; userId: number | null }
  | { kind: 'not-mounted' }
  | { kind: 'enotconn' }
  /** a FUSE/network mount (this one or one above it) that did not answer a probe in time */
  | { kind: 'hung'; mountPoint: string; detail: string }
  | { kind: 'no-access'; code: string }
  | { kind: 'wrong-type'; fsType: string }

export function judgeMount(mount: string, expectedType: string, state: MountState): Refusal[] {
  switch (state.kind) {
    case 'live':
      // dockerd (root) resolves the symlink when it starts a container: a FUSE mount of
      // another user without allow_other is closed to it
      if (state.userId !== null && state.userId !== 0 && !state.allowOther) {
        return [
          {
            check: 'allow-other',
            message: `${mount} is mounted by uid ${state.userId} without allow_other: dockerd (root) cannot reach it, so no container could start on the symlink`,
            remedy: 'remount with --allow-other (and user_allow_other in /etc/fuse.conf)',
          },
        ]
      }
      return []
    case 'no-access':
      return [
        {
          check: 'mount',
          message: `${mount} cannot be read by shipshape (${state.code}): a FUSE mount of another user without allow_other`,
          remedy: 'remount with --allow-other (and user_allow_other in /etc/fuse.conf)',
        },
      ]
    case 'not-mounted':
      return [
        {
          check: 'mount',
          message: `${mount} is not a mount point (nothing is mounted there: writing into it would fill the local disk)`,
          remedy: `mount it first (e.g. systemctl start the rclone mount unit) and check with: findmnt ${mount}`,
        },
      ]
    case 'enotconn':
      return [
        {
          check: 'mount',
          message: `${mount} answers "Transport endpoint is not connected": its rclone process died`,
          remedy: `unmount it with fusermount3 -uz ${mount}, then start the mount again`,
        },
      ]
    case 'hung':
      return [
        {
          check: 'mount',
          message: `${state.mountPoint === mount ? mount : `${mount} (on ${state.mountPoint})`} does not answer (${state.detail}): its rclone process is stopped or stuck, or the remote does not reply`,
          remedy: `check the rclone process; if it is stuck or dead: fusermount3 -uz ${state.mountPoint}, then start the mount again`,
        },
      ]
    case 'wrong-type':
      return [
        {
          check: 'mount',
          message: `${mount} is mounted as ${state.fsType}, not ${expectedType}`,
          remedy: `check the mount, or set mountType: ${state.fsType} for this asset`,
        },
      ]
  }
}

/** A container's bind mount that involves the source. */
export interface ContainerBinding {
  id: string
  name: string
  running: boolean
  /** Config.User ('' = the image's default) */
  user: string
  /** host path bound */
  bindSource: string
  /** path inside the container */
  destination: string
  /** also binds the mount (or an ancestor) at the same path: a symlink into it resolves inside */
  seesMount: boolean
}

/** Is this user spec root? '' (the image default) counts as root only when the image says so. */
export function isRootUser(user: string): boolean {
  const name = user.split(':')[0] ?? ''
  return name === '' || name === '0' || name === 'root'
}

/**
 * Containers that bind the source or a directory inside it see the symlink resolved at start;
 * containers that bind a PARENT of the source would see a symlink to a path they don't have.
 * Without allow_other, no uid but the mounter's can read a FUSE mount.
 */
export function judgeContainers(
  source: string,
  bindings: ContainerBinding[],
  mount: { path: string; allowOther: boolean },
): Refusal[] {
  const out: Refusal[] = []
  for (const b of bindings) {
    if (isUnder(source, b.bindSource) && b.bindSource !== source && !b.seesMount) {
      out.push({
        check: 'containers',
        message: `container ${b.name} binds ${b.bindSource} (a parent of the source) at ${b.destination}: it would see a symlink to ${mount.path}, which it does not mount`,
        remedy: `bind the source directory itself, or also bind ${mount.path} into ${b.name} at the same path`,
      })
    }
    if (!mount.allowOther && !isRootUser(b.user)) {
      out.push({
        check: 'allow-other',
        message: `container ${b.name} runs as user ${b.user} but ${mount.path} is mounted without allow_other: only the mounting user can read it`,
        remedy:
          'remount with --allow-other (and user_allow_other in /etc/fuse.conf if rclone runs as a non-root user)',
      })
    }
  }
  return out
}
