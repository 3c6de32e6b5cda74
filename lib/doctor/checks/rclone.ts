/** rclone: needed by migrate-assets for every configured asset. */
import { errorText, outcome, type Check, type DoctorCheck, type Outcome } from '../check.js'

export interface RcloneFacts {
  version: Outcome<string>
  /** the configured assets that need it */
  assets: string[]
}

/** Pure. */
export function judgeRclone(f: RcloneFacts): Check[] {
  const base = { id: 'rclone', title: 'rclone' }
  if ('ok' in f.version) return [{ ...base, status: 'ok', detail: f.version.ok, fix: null }]
  const { assets } = f
  return [
    {
      ...base,
      status: assets.length ? 'fail' : 'warn',
      detail: `${errorText(f.version.error)}${assets.length ? `: migrate-assets needs it for ${assets.join(', ')}` : ' (no asset is configured: nothing needs it yet)'}`,
      fix: 'apt-get install rclone',
    },
  ]
}

export const rcloneCheck: DoctorCheck<RcloneFacts> = {
  id: 'rclone',
  title: 'rclone',
  gather: async (ctx) => ({
    version: await outcome(() => ctx.ports.rcloneVersion()),
    assets: Object.keys(ctx.config.assets),
  }),
  judge: judgeRclone,
}
