/**
 * `config init`: the health check a container suggests (its HEALTHCHECK, else a guess at an HTTP
 * port it publishes). Pure.
 */
import type { ContainerFacts, PublishedPort } from './facts.js'
import { isDatabaseImage, runningRef } from './propose-protect.js'

/** Ports that do not speak HTTP (databases, brokers, mail, ssh, dns). */
const NOT_HTTP = new Set([
  21, 22, 23, 25, 53, 110, 143, 389, 465, 587, 636, 993, 995, 1433, 1521, 1883, 2049, 2181, 3306,
  4222, 5432, 5672, 6379, 7687, 8883, 9042, 9092, 11211, 27017, 61616,
])
/** The usual HTTP ports, most likely first. */
const HTTP_FIRST = [80, 8080, 8000, 3000, 5000, 8888, 8081, 9000, 443, 8443]
const httpRank = (port: number) => {
  const i = HTTP_FIRST.indexOf(port)
  return i < 0 ? HTTP_FIRST.length : i
}

export interface HealthGuess {
  health: Record<string, unknown> | null
  guessed: boolean
  note: string
}

const hostFor = (ip: string) =>
  !ip || ip === '0.0.0.0' || ip === '::' ? '127.0.0.1' : ip.includes(':') ? `[${ip}]` : ip

/** The health check a container suggests: its HEALTHCHECK, else a guess at an HTTP port. */
export function guessHealth(c: ContainerFacts): HealthGuess {
  if (c.healthcheck)
    return { health: { container: true }, guessed: false, note: "the container's own HEALTHCHECK" }
  const none = {
    health: null,
    guessed: false,
    note: 'no health check found (no HEALTHCHECK, no HTTP port): rebuild needs one, add health: url:, command: or container: true',
  }
  if (isDatabaseImage(runningRef(c) ?? '')) return none
  const tcp = (p: PublishedPort) => p.protocol === 'tcp' && !NOT_HTTP.has(p.port)
  const published = c.published.filter(tcp).sort((a, b) => httpRank(a.port) - httpRank(b.port))
  const scheme = (port: number) => (port === 443 || port === 8443 ? 'https' : 'http')
  const p = published[0]
  if (p) {
    return {
      health: { url: `${scheme(p.port)}://${hostFor(p.hostIp)}:${p.hostPort}/` },
      guessed: true,
      note: `guessed: confirm (published port ${p.port}/tcp); a /health path is better`,
    }
  }
  if (c.networkMode === 'host') {
    const port = c.exposed
      .filter((x) => !NOT_HTTP.has(x))
      .sort((a, b) => httpRank(a) - httpRank(b))[0]
    if (port !== undefined) {
      return {
        health: { url: `${scheme(port)}://127.0.0.1:${port}/` },
        guessed: true,
        note: `guessed: confirm (host network, EXPOSE ${port}); a /health path is better`,
      }
    }
  }
  return none
}

export const AUTH_NOTE =
  'behind basic auth? add userEnv/passwordEnv: the NAMES of environment variables holding them, never the values'
