/** How a person turns the scheduled jobs on: the timers, or the schedule service instead. */
export const ENABLE_TIMERS = 'systemctl enable --now shipshape-report.timer shipshape-prune.timer'
export const ENABLE_SCHEDULE = 'systemctl enable --now shipshape-schedule.service'
