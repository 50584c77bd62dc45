//! A log line that a peer or a client can trigger once per connection or message, written
//! at most once per interval in full and otherwise counted and summed up, so that a flood
//! of connections cannot flood the log (nor spend the node's time writing it).

use std::fmt::Display;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tracing::Level;

/// A rate-limited log line: in each interval, the first occurrence is logged in full and
/// the others are only counted; once the interval is over, one summary line tells how many
/// were not logged and shows the latest of them.
///
/// So a flood costs at most two lines per interval. [`RateLimitedLog::flush`] writes a due
/// summary without waiting for the next occurrence: call it periodically (every
/// interval) so that the count of a flood's last interval is not lost.
#[derive(Debug)]
pub struct RateLimitedLog {
    level: Level,
    /// What happened, as the start of each line ("node 1: peer connection refused").
    what: String,
    interval: Duration,
    window: Mutex<Window>,
}

/// The current interval.
#[derive(Debug, Default)]
struct Window {
    /// When its first occurrence was logged; `None` between intervals.
    started: Option<Instant>,
    /// Occurrences counted and not logged.
    suppressed: u64,
    /// The latest of them.
    latest: String,
}

/// What to log for the occurrences of an interval that were not logged one by one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// How many were not logged.
    pub suppressed: u64,
    /// The detail of the latest of them.
    pub latest: String,
}

/// What to log now, for one occurrence: [`RateLimitedLog::note`]'s answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Log this occurrence in full.
    pub log_in_full: bool,
    /// The previous interval ended with occurrences not logged: sum them up first.
    pub summary: Option<Summary>,
}

impl RateLimitedLog {
    /// A line logged at `level`, starting with `what`, in full at most once per
    /// `interval`.
    pub fn new(level: Level, what: impl Into<String>, interval: Duration) -> RateLimitedLog {
        RateLimitedLog {
            level,
            what: what.into(),
            interval,
            window: Mutex::new(Window::default()),
        }
    }

    /// Logs one occurrence, in full or counted toward the interval's summary.
    pub fn log(&self, detail: impl Display) {
        let decision = self.note(Instant::now(), &detail);
        if let Some(summary) = decision.summary {
            self.write_summary(&summary);
        }
        if decision.log_in_full {
            self.write(format_args!("{}: {detail}", self.what));
        }
    }

    /// Writes the summary of the interval if it is over and some occurrences went
    /// unlogged.
    pub fn flush(&self) {
        if let Some(summary) = self.take_summary(Instant::now()) {
            self.write_summary(&summary);
        }
    }

    /// Decides what to log for an occurrence at `now`, without logging: the pure part of
    /// [`RateLimitedLog::log`].
    pub fn note(&self, now: Instant, detail: &dyn Display) -> Decision {
        let mut window = self.window();
        let summary = self.close_if_over(&mut window, now);
        let log_in_full = if window.started.is_none() {
            window.started = Some(now);
            true
        } else {
            window.suppressed += 1;
            window.latest = detail.to_string();
            false
        };
        Decision {
            log_in_full,
            summary,
        }
    }

    /// The summary of the interval, if it is over at `now` and some occurrences went
    /// unlogged: the pure part of [`RateLimitedLog::flush`].
    pub fn take_summary(&self, now: Instant) -> Option<Summary> {
        let mut window = self.window();
        self.close_if_over(&mut window, now)
    }

    /// Ends the interval if it is over, returning its summary when there is one.
    fn close_if_over(&self, window: &mut Window, now: Instant) -> Option<Summary> {
        let started = window.started?;
        if now.saturating_duration_since(started) < self.interval {
            return None;
        }
        window.started = None;
        let suppressed = std::mem::take(&mut window.suppressed);
        let latest = std::mem::take(&mut window.latest);
        (suppressed > 0).then_some(Summary { suppressed, latest })
    }

    fn write_summary(&self, summary: &Summary) {
        self.write(format_args!(
            "{}: {} more in the last {} s, not logged one by one; the latest: {}",
            self.what,
            summary.suppressed,
            self.interval.as_secs_f64(),
            summary.latest
        ));
    }

    fn write(&self, line: std::fmt::Arguments<'_>) {
        // The level of a tracing event is fixed where it is written: one call per level.
        match self.level {
            Level::ERROR => tracing::error!("{line}"),
            Level::WARN => tracing::warn!("{line}"),
            Level::INFO => tracing::info!("{line}"),
            Level::DEBUG => tracing::debug!("{line}"),
            Level::TRACE => tracing::trace!("{line}"),
        }
    }

    fn window(&self) -> std::sync::MutexGuard<'_, Window> {
        // The window is a few counters, consistent after any single update.
        self.window.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // In each interval the first occurrence is logged and the rest counted; the count
    // comes out once the interval is over, by the next occurrence or a flush, and only
    // when there is something to count.
    #[test]
    fn one_line_and_one_summary_per_interval() {
        let log = RateLimitedLog::new(Level::WARN, "refused", Duration::from_secs(10));
        let start = Instant::now();
        let at = |seconds: u64| start + Duration::from_secs(seconds);
        assert_eq!(
            log.note(at(0), &"first"),
            Decision {
                log_in_full: true,
                summary: None
            }
        );
        for second in 1..=9 {
            assert!(!log.note(at(second), &format!("at {second}")).log_in_full);
        }
        assert_eq!(log.take_summary(at(9)), None, "the interval is not over");
        assert_eq!(
            log.note(at(12), &"later"),
            Decision {
                log_in_full: true,
                summary: Some(Summary {
                    suppressed: 9,
                    latest: "at 9".to_string()
                })
            }
        );
        assert!(!log.note(at(13), &"counted").log_in_full);
        assert_eq!(
            log.take_summary(at(22)),
            Some(Summary {
                suppressed: 1,
                latest: "counted".to_string()
            })
        );
        assert_eq!(log.take_summary(at(40)), None, "nothing left to sum up");
        // A lone occurrence in an interval costs one line and no summary.
        assert!(log.note(at(50), &"alone").log_in_full);
        assert_eq!(log.take_summary(at(61)), None);
    }
}
