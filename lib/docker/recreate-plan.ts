/**
 * Pure: what to create so that a new container is the old one on a new image (planRecreate), the
 * restart policy it was created with, and the containers that hold on to it by its id. Reads the
 * inspect JSON as the engine sends it (HostConfig is copied whole, fields of newer engines too);
 * recreate.ts reads it from the engine and does the recreate.
 */
import type Docker from 'dockerode'
import { RefusedError } from '../errors.js'

/** Pure: what to create so the new container is the old one on `newImage`. */
export interface RecreatePlan {
  /** without leading '/' */
  name: string
  /** includes name, Image: newImage, Config fields, HostConfig, NetworkingConfig for the first network */
  create: Docker.ContainerCreateOptions
  /** further networks to connect after create (a create can carry only one endpoint on API < 1.44) */
  connect: { network: string; endpoint: Docker.EndpointSettings }[]
  /** whether the old one was running (start the new one only then) */
  wasRunning: boolean
}

type Raw = Record<string, unknown>

const isObj = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v)
const obj = (v: unknown): Raw => (isObj(v) ? v : {})
const str = (v: unknown): string => (typeof v === 'string' ? v : '')
const strs = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []
const isEmpty = (v: unknown): boolean =>
  v === null ||
  v === undefined ||
  v === '' ||
  (Array.isArray(v) && v.length === 0) ||
  (isObj(v) && Object.keys(v).length === 0)

/** Deep equality of JSON values; null, undefined, '', [] and {} are all "unset". */
function same(a: unknown, b: unknown): boolean {
  if (isEmpty(a) && isEmpty(b)) return true
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => same(x, b[i]))
  }
  if (isObj(a) && isObj(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)])
    return [...keys].every((k) => same(a[k], b[k]))
  }
  return a === b
}

/** Entries of a {key: value} map that the image does not have with the same value. */
function ownEntries(mine: unknown, image: unknown): Raw | undefined {
  const base = obj(image)
  const out: Raw = {}
  for (const [k, v] of Object.entries(obj(mine))) {
    if (!(k in base) || !same(base[k], v)) out[k] = v
  }
  return Object.keys(out).length ? out : undefined
}

const cleanPath = (p: string): string => (p.length > 1 ? p.replace(/\/+$/, '') : p)

/** The container path of a HostConfig.Binds entry `src:dest[:opts]`. */
function bindDestination(bind: string): string {
  const parts = bind.split(':')
  return cleanPath(parts.length >= 2 ? (parts[1] ?? '') : (parts[0] ?? ''))
}

/** The MAC docker 20.10–26.x gives an endpoint: 02:42 and the IPv4 address. */
function derivedMac(ip: string): string {
  const octets = ip.split('.').map(Number)
  if (octets.length !== 4 || octets.some((n) => !(n >= 0 && n <= 255))) return ''
  return ['02', '42', ...octets.map((n) => n.toString(16).padStart(2, '0'))].join(':')
}

/** An endpoint's MAC unless docker made it up (a stopped container's endpoint shows none). */
function operatorMac(ep: Raw): string | undefined {
  const mac = str(ep.MacAddress).toLowerCase()
  const ip = str(ep.IPAddress)
  if (!mac || (ip ? mac === derivedMac(ip) : mac.startsWith('02:42:'))) return undefined
  return str(ep.MacAddress)
}

function endpointFor(
  ep: Raw,
  dropAliases: Set<string>,
  mac: string | undefined,
): Docker.EndpointSettings {
  const out: Docker.EndpointSettings = {}
  const aliases = strs(ep.Aliases).filter((a) => !dropAliases.has(a))
  if (aliases.length) out.Aliases = [...new Set(aliases)]
  const ipam = obj(ep.IPAMConfig)
  if (str(ipam.IPv4Address) || str(ipam.IPv6Address) || strs(ipam.LinkLocalIPs).length) {
    out.IPAMConfig = ipam as Docker.IPAMConfig
  }
  if (strs(ep.Links).length) out.Links = strs(ep.Links)
  if (!isEmpty(ep.DriverOpts)) out.DriverOpts = obj(ep.DriverOpts) as Record<string, string>
  if (mac) out.MacAddress = mac
  // API 1.48+: the gateway priority an operator gave (`--network name=…,gw-priority=…`)
  if (typeof ep.GwPriority === 'number' && ep.GwPriority !== 0) {
    ;(out as Raw).GwPriority = ep.GwPriority
  }
  return out
}

/** HostConfig.Links as inspect shows them (`/db:/app/db`) back to create's `db:db`. */
function createLink(link: string): string {
  const i = link.indexOf(':')
  if (i < 0) return link.replace(/^\//, '')
  const target = link.slice(0, i).replace(/^\//, '')
  const alias =
    link
      .slice(i + 1)
      .split('/')
      .pop() ?? ''
  return alias ? `${target}:${alias}` : target
}

/** NetworkMode values with no endpoint of their own. */
function noEndpoints(mode: string): boolean {
  return mode === 'host' || mode === 'none' || mode.startsWith('container:')
}

/**
 * What to create so the new container is the old one on `newImage`. Values the old image
 * supplied are left out (the new image's own ENV, CMD, labels… win); values the operator set
 * are kept. Refuses (RefusedError) a container created with --rm: stopping it would remove it
 * and its anonymous volumes, leaving nothing to go back to.
 */
export function planRecreate(
  container: Docker.ContainerInspectInfo,
  oldImage: Docker.ImageInspectInfo,
  newImage: string,
): RecreatePlan {
  const c = container as unknown as Raw
  const id = str(c.Id)
  const shortId = id.slice(0, 12)
  const name = str(c.Name).replace(/^\//, '')
  const host = obj(c.HostConfig)
  const mode = str(host.NetworkMode)
  refuseUnkeepable({ id, name, shortId }, host)
  const create: Docker.ContainerCreateOptions = { name, Image: newImage }
  const img = obj((oldImage as unknown as Raw).Config)
  const { hostname, mac } = copyConfig(create, obj(c.Config), img, { mode, shortId })
  create.HostConfig = hostConfigFor(c, host)
  const connect = networksFor(c, create, { mode, shortId, hostname, mac })
  return { name, create, connect, wasRunning: obj(c.State).Running === true }
}

/** A container stopping would remove (--rm), or whose namespaces name itself: refused. */
function refuseUnkeepable(c: { id: string; name: string; shortId: string }, host: Raw): void {
  if (host.AutoRemove === true) {
    throw new RefusedError(
      `container ${c.name} was created with --rm: stopping it removes it and its anonymous volumes, so it cannot be kept aside for an undo`,
      'recreate it by hand (docker run without --rm), then run the rebuild again',
    )
  }
  const selfRefs = new Set([`container:${c.id}`, `container:${c.name}`, `container:${c.shortId}`])
  for (const key of ['NetworkMode', 'IpcMode', 'PidMode', 'UTSMode', 'UsernsMode', 'Cgroup']) {
    if (selfRefs.has(str(host[key]))) {
      throw new RefusedError(
        `container ${c.name}: HostConfig.${key} ${str(host[key])} names the container itself`,
      )
    }
  }
}

/**
 * The Config fields the operator set (those the old image gave are left to the new one) onto
 * `create`; returns the hostname and the operator's MAC, which the networks need too.
 */
function copyConfig(
  create: Docker.ContainerCreateOptions,
  cfg: Raw,
  img: Raw,
  o: { mode: string; shortId: string },
): { hostname: string; mac: string } {
  const out = create as Raw
  const containerMode = o.mode.startsWith('container:')
  // Hostname: docker's default is the short id; with another container's network namespace
  // the engine copies that container's hostname/domain in, and refuses them on create.
  const hostname = str(cfg.Hostname)
  if (!containerMode && hostname && hostname !== o.shortId) create.Hostname = hostname
  if (!containerMode && str(cfg.Domainname)) create.Domainname = str(cfg.Domainname)
  for (const k of [
    'AttachStdin',
    'AttachStdout',
    'AttachStderr',
    'Tty',
    'OpenStdin',
    'StdinOnce',
  ]) {
    if (typeof cfg[k] === 'boolean') out[k] = cfg[k]
  }
  if (typeof cfg.StopTimeout === 'number') create.StopTimeout = cfg.StopTimeout
  if (cfg.NetworkDisabled === true) create.NetworkDisabled = true
  // Config.MacAddress: only ever the operator's (both engines leave it empty otherwise)
  const mac = o.mode === 'host' || containerMode ? '' : str(cfg.MacAddress)
  if (mac) create.MacAddress = mac

  const imageEnv = new Set(strs(img.Env))
  const env = strs(cfg.Env).filter((e) => !imageEnv.has(e))
  if (env.length) create.Env = env

  // Once an Entrypoint is given the engine takes no Cmd from the image: keep both together.
  if (!same(cfg.Entrypoint, img.Entrypoint)) {
    const entry = cfg.Entrypoint
    create.Entrypoint = isEmpty(entry) ? [''] : (entry as string[])
    if (!isEmpty(cfg.Cmd)) create.Cmd = strs(cfg.Cmd)
  } else if (!same(cfg.Cmd, img.Cmd)) {
    create.Cmd = strs(cfg.Cmd)
  }
  for (const k of ['WorkingDir', 'User', 'StopSignal']) {
    if (str(cfg[k]) && str(cfg[k]) !== str(img[k])) out[k] = str(cfg[k])
  }
  for (const k of ['Shell', 'OnBuild']) {
    if (!isEmpty(cfg[k]) && !same(cfg[k], img[k])) out[k] = strs(cfg[k])
  }
  // Healthcheck: the engine fills the fields an override left out from the image; keep only
  // those the operator changed, the new image supplies the rest.
  if (isObj(cfg.Healthcheck)) {
    const own = ownEntries(cfg.Healthcheck, img.Healthcheck)
    if (own) create.Healthcheck = own as Docker.HealthConfig
  }
  const exposed = ownEntries(cfg.ExposedPorts, img.ExposedPorts)
  if (exposed && !containerMode) create.ExposedPorts = exposed as Record<string, object>
  const volumes = ownEntries(cfg.Volumes, img.Volumes)
  if (volumes) create.Volumes = volumes as Record<string, object>
  const labels = ownEntries(cfg.Labels, img.Labels)
  if (labels) create.Labels = labels as Record<string, string>
  return { hostname, mac }
}

/** HostConfig as the operator gave it, anonymous volumes mounted by name. */
function hostConfigFor(c: Raw, host: Raw): Docker.HostConfig {
  // HostConfig is the operator's input as stored; copied whole (fields of newer engines too).
  const hc: Raw = { ...host }
  // The engine's default masks (non-empty) would pin this engine version's list; an empty
  // list is the operator's `--security-opt systempaths=unconfined`.
  for (const k of ['MaskedPaths', 'ReadonlyPaths']) {
    if (!Array.isArray(hc[k]) || strs(hc[k]).length) delete hc[k]
  }
  if (strs(hc.Links).length) hc.Links = strs(hc.Links).map(createLink)

  // Anonymous volumes: the data stays with the service, mounted by name in the new container.
  const containerMounts = (Array.isArray(c.Mounts) ? c.Mounts : []).map(obj)
  const volumeAt = new Map<string, Raw>()
  for (const m of containerMounts) {
    if (m.Type === 'volume' && str(m.Name)) volumeAt.set(cleanPath(str(m.Destination)), m)
  }
  const given = new Set(strs(hc.Binds).map(bindDestination))
  const mounts: Raw[] = (Array.isArray(hc.Mounts) ? hc.Mounts : []).map((m0) => {
    const m = obj(m0)
    const target = cleanPath(str(m.Target))
    given.add(target)
    // `--mount type=volume,dst=/x` without a source is anonymous too: name it
    const vol = volumeAt.get(target)
    if (m.Type === 'volume' && !str(m.Source) && vol) return { ...m, Source: str(vol.Name) }
    return m
  })
  for (const [target, m] of volumeAt) {
    if (given.has(target)) continue
    const mount: Raw = { Type: 'volume', Source: str(m.Name), Target: str(m.Destination) }
    if (m.RW === false) mount.ReadOnly = true
    const driver = str(m.Driver)
    if (driver && driver !== 'local') mount.VolumeOptions = { DriverConfig: { Name: driver } }
    mounts.push(mount)
    given.add(target)
  }
  if (mounts.length) hc.Mounts = mounts
  return hc as Docker.HostConfig
}

/**
 * Networks: the NetworkMode one in the create (onto `create`), the others returned to connect
 * afterwards. Aliases the engine adds by itself (the old short id; on 20.10 the hostname) are
 * left to the engine.
 */
function networksFor(
  c: Raw,
  create: Docker.ContainerCreateOptions,
  o: { mode: string; shortId: string; hostname: string; mac: string },
): RecreatePlan['connect'] {
  const connect: RecreatePlan['connect'] = []
  if (noEndpoints(o.mode)) return connect
  const networks = obj(obj(c.NetworkSettings).Networks)
  const modeName = o.mode === 'default' || o.mode === '' ? 'bridge' : o.mode
  const primary =
    modeName in networks
      ? modeName
      : Object.keys(networks).find((k) => {
          const nid = str(obj(networks[k]).NetworkID)
          return nid !== '' && modeName.length >= 12 && nid.startsWith(modeName)
        })
  const dropAliases = new Set([o.shortId, o.hostname].filter(Boolean))
  for (const [net, ep0] of Object.entries(networks)) {
    const ep = obj(ep0)
    if (net === primary) {
      const endpoint = endpointFor(ep, dropAliases, o.mac || operatorMac(ep))
      create.NetworkingConfig = { EndpointsConfig: { [net]: endpoint } }
    } else {
      connect.push({ network: net, endpoint: endpointFor(ep, dropAliases, operatorMac(ep)) })
    }
  }
  return connect
}

export interface RestartPolicy {
  Name: string
  MaximumRetryCount?: number
}

/** The restart policy a container was created with ({Name: ''} = none). */
export function restartPolicyOf(raw: Docker.ContainerInspectInfo): RestartPolicy {
  const p = obj(obj((raw as unknown as Raw).HostConfig).RestartPolicy)
  const max = typeof p.MaximumRetryCount === 'number' ? p.MaximumRetryCount : 0
  return { Name: str(p.Name), ...(str(p.Name) === 'on-failure' ? { MaximumRetryCount: max } : {}) }
}

/**
 * Containers that hold on to `target` by its id: its network namespace (`--network container:`,
 * also ipc/pid/uts), `--volumes-from`, `--link`. Recreating it under a new id breaks them (they
 * stay pinned to the old one, which the cleanup removes). Pure.
 */
export function findDependents(
  target: { id: string; name: string },
  others: Docker.ContainerInspectInfo[],
): { name: string; how: string }[] {
  const refs = new Set([target.id, target.id.slice(0, 12), target.name, `/${target.name}`])
  const out: { name: string; how: string }[] = []
  for (const o of others as unknown as Raw[]) {
    if (str(o.Id) === target.id) continue
    const name = str(o.Name).replace(/^\//, '')
    const host = obj(o.HostConfig)
    for (const key of ['NetworkMode', 'IpcMode', 'PidMode', 'UTSMode']) {
      const v = str(host[key])
      if (v.startsWith('container:') && refs.has(v.slice('container:'.length))) {
        const flag = key === 'NetworkMode' ? 'network' : key.replace('Mode', '').toLowerCase()
        out.push({ name, how: `--${flag} container:${target.name}` })
      }
    }
    for (const v of Array.isArray(host.VolumesFrom) ? (host.VolumesFrom as unknown[]) : []) {
      const from = String(v).split(':')[0] ?? ''
      if (refs.has(from)) out.push({ name, how: `--volumes-from ${target.name}` })
    }
    for (const v of Array.isArray(host.Links) ? (host.Links as unknown[]) : []) {
      const from = String(v).split(':')[0] ?? ''
      if (refs.has(from)) out.push({ name, how: `--link ${target.name}` })
    }
  }
  return out
}
