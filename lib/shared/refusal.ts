/** A preflight rule's "no": which check, why, and what a person can do about it. */
export interface Refusal {
  check: string
  message: string
  remedy?: string
}
