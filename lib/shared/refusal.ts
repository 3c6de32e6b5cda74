/**
 * A reason a command will not act, with what to do about it. Every preflight reports all of them
 * at once, before anything changed (exit 4).
 */
export interface Refusal {
  check: string
  message: string
  remedy?: string
}
