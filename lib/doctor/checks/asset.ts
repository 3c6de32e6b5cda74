/**
 * One configured asset's mount: is it live, can dockerd and the containers binding its source read
 * it (allow_other), and may a non-root mounter ask for allow_other (user_allow_other)?
 */
import type { AssetConfig } from '../../config/index.js'
import type { MountEntry } from '../../host/mountinfo.js'
import { displayRemote } from '../../host/rclone.js'
import {
  judgeContainers,
  judgeMount,
  type ContainerBinding,
  type MountState,
} from '../../shared/mount.js'
import { errorText, type Check, type DoctorCheck } from '../check.js'

export interface FuseConf {
  userAllowOther: boolean
  mountMax: number | null
}

/**
 * /etc/fuse.conf as fusermount3 reads it (libfuse util/fusermount.c): everything from `#` on is a
 * comment, the rest trimmed; `user_allow_other` must be the whole line. Pure.
 */
export function parseFuseConf(text: string): FuseConf {
  const out: FuseConf = { userAllowOther: false, mountMax: null }
  for (const raw of text.split('\n')) {
    const line = raw.split('#')[0]!.trim()
    if (line === 'user_allow_other') out.userAllowOther = true
    const max = /^mount_max\s*=\s*(\d+)$/.exec(line)
    if (max) out.mountMax = Number(max[1])
  }
  return out
}

const REMOUNT = 'remount it with --allow-other (rclone mount … --allow-other)'

/** Pure: the allow_other verdict for a live mount, given the containers that bind the source. */
export function judgeAllowOther(
  name: string,
  asset: Pick<AssetConfig, 'source' | 'mount' | 'mountType'>,
  mount: { allowOther: boolean; userId: number | null },
  bindings: ContainerBinding[] | null,
  /** why bindings is null */
  unchecked = 'no engine',
): Check {
  const base = { id: `asset-allow-other:${name}`, title: `Asset ${name}: allow_other` }
  if (mount.allowOther) {
    return {
      ...base,
      status: 'ok',
      detail: `${asset.mount} has allow_other: dockerd and every container user can read it`,
      fix: null,
    }
  }
  // a non-root mounter's mount without allow_other is closed even to root (dockerd)
  const owner = judgeMount(asset.mount, asset.mountType, {
    kind: 'live',
    fsType: asset.mountType,
    allowOther: false,
    userId: mount.userId,
  })[0]
  if (owner) return { ...base, status: 'fail', detail: owner.message, fix: owner.remedy ?? REMOUNT }
  if (bindings === null) {
    return {
      ...base,
      status: 'warn',
      detail: `${asset.mount} has no allow_other: only root can read it; the containers binding ${asset.source} were not checked (${unchecked})`,
      fix: REMOUNT,
    }
  }
  const seen = new Set<string>()
  const refusals = judgeContainers(asset.source, bindings, {
    path: asset.mount,
    allowOther: false,
  }).filter((r) => r.check === 'allow-other' && !seen.has(r.message) && seen.add(r.message))
  if (refusals.length) {
    return {
      ...base,
      status: 'fail',
      detail: refusals.map((r) => r.message).join('; '),
      fix: refusals[0]!.remedy ?? REMOUNT,
    }
  }
  return {
    ...base,
    status: 'warn',
    detail: `${asset.mount} has no allow_other: only root can read it (no container binding ${asset.source} runs as another user now)`,
    fix: REMOUNT,
  }
}

/** Pure: user_allow_other, needed when a non-root user mounts with --allow-other. */
export function judgeUserAllowOther(
  name: string,
  mount: string,
  o: { userId: number; allowOther: boolean; fuseConf: string; text: string | null },
): Check {
  const base = { id: `asset-fuse-conf:${name}`, title: `Asset ${name}: user_allow_other` }
  if (o.text !== null && parseFuseConf(o.text).userAllowOther) {
    return {
      ...base,
      status: 'ok',
      detail: `${o.fuseConf} has user_allow_other (uid ${o.userId} mounts ${mount})`,
      fix: null,
    }
  }
  const has = o.text === null ? 'does not exist' : 'has no user_allow_other line'
  return {
    ...base,
    status: o.allowOther ? 'warn' : 'fail',
    detail: `${mount} is mounted by uid ${o.userId} and ${o.fuseConf} ${has}: ${o.allowOther ? 'its next mount with --allow-other will be refused' : 'it cannot be remounted with --allow-other'}`,
    fix: `add the line user_allow_other to ${o.fuseConf}, then ${o.allowOther ? 'nothing else' : REMOUNT}`,
  }
}

export interface AssetFacts {
  name: string
  asset: Pick<AssetConfig, 'source' | 'mount' | 'mountType'>
  state: MountState
  entry: MountEntry | null
  /** containers binding the source; null when not asked (allow_other set, or no engine) */
  bindings: ContainerBinding[] | null
  /** why bindings is null although they were needed */
  unchecked?: string
  /** fuse.conf, read for a non-root mounter */
  fuse?: { file: string; text: string | null }
}

/** Pure: the mount, allow_other and (for a non-root mounter) user_allow_other. */
export function judgeAsset(f: AssetFacts): Check[] {
  const { name, asset, state } = f
  const base = { id: `asset-mount:${name}`, title: `Asset ${name}: mount` }
  if (state.kind !== 'live') {
    const r = judgeMount(asset.mount, asset.mountType, state)[0]
    return [
      {
        ...base,
        status: 'fail',
        detail: r?.message ?? `${asset.mount} is not usable (${state.kind})`,
        fix: r?.remedy ?? `check the mount: findmnt ${asset.mount}`,
      },
    ]
  }
  const from = f.entry ? ` from ${displayRemote(f.entry.source)}` : ''
  const by = state.userId === null ? '' : `, mounted by uid ${state.userId}`
  const out: Check[] = [
    {
      ...base,
      status: 'ok',
      detail: `${asset.mount} is live: ${state.fsType}${from}${by}`,
      fix: null,
    },
    judgeAllowOther(name, asset, state, f.bindings, f.unchecked),
  ]
  if (state.userId !== null && state.userId !== 0 && f.fuse) {
    out.push(
      judgeUserAllowOther(name, asset.mount, {
        userId: state.userId,
        allowOther: state.allowOther,
        fuseConf: f.fuse.file,
        text: f.fuse.text,
      }),
    )
  }
  return out
}

export function assetCheck(name: string, asset: AssetConfig): DoctorCheck<AssetFacts> {
  return {
    id: `asset-mount:${name}`,
    title: `Asset ${name}: mount`,
    needsEngine: true,
    hangFix: `${asset.mount} does not answer: check its rclone process and remote; if it is dead, fusermount3 -uz ${asset.mount} and start the mount again`,
    async gather(ctx) {
      const { ports } = ctx
      const { state, entry } = await ports.mountState(
        asset.mount,
        asset.mountType,
        await ctx.mounts(),
      )
      const facts: AssetFacts = { name, asset, state, entry, bindings: null }
      if (state.kind !== 'live') return facts
      if (!state.allowOther && ctx.engine) {
        try {
          facts.bindings = await ports.findBindings(ctx.engine, asset.source, asset.mount)
        } catch (err) {
          facts.unchecked = errorText(err)
        }
      }
      if (state.userId !== null && state.userId !== 0) {
        facts.fuse = { file: ports.fuseConf, text: await ports.readText(ports.fuseConf) }
      }
      return facts
    },
    judge: judgeAsset,
  }
}
