//! Bounded waiting for conditions that become true eventually (a cluster
//! agreeing, a replica being promoted), instead of bare sleeps.
//!
//! Every wait is bounded twice: by time (the caller's timeout plus the
//! patience from `SLOTWAY_TEST_PATIENCE_MS`, default 0, which a slow machine
//! raises once for every wait) and by a count of polls, so a clock that
//! misbehaves cannot make a test spin forever.

use std::time::{Duration, Instant};

/// How often a condition is polled.
pub const POLL: Duration = Duration::from_millis(25);

/// Extra time granted to every wait, from `SLOTWAY_TEST_PATIENCE_MS`.
pub fn patience() -> Duration {
    let ms = std::env::var("SLOTWAY_TEST_PATIENCE_MS").ok().and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0);
    Duration::from_millis(ms)
}

/// `timeout` stretched by the configured patience.
pub fn with_patience(timeout: Duration) -> Duration {
    timeout.saturating_add(patience())
}

/// Polls `cond` until it returns true; `Ok(elapsed)`, or `Err(elapsed)`
/// once `timeout` (plus patience) has passed.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> Result<Duration, Duration> {
    let start = Instant::now();
    let budget = with_patience(timeout);
    // The count bound: enough polls to cover the budget, with slack for
    // conditions that take a while to evaluate.
    let max_polls = budget.as_millis() / POLL.as_millis() + 2;
    for _ in 0..max_polls {
        if cond() {
            return Ok(start.elapsed());
        }
        if start.elapsed() >= budget {
            break;
        }
        std::thread::sleep(POLL);
    }
    if cond() {
        return Ok(start.elapsed());
    }
    Err(start.elapsed())
}

/// `wait_until!(timeout, cond)`: polls the boolean expression `cond` until
/// it holds, panicking with the expression's text once `timeout` (a
/// `Duration`, stretched by `SLOTWAY_TEST_PATIENCE_MS`) has passed.
/// Evaluates to the time it took. An optional format message follows.
#[macro_export]
macro_rules! wait_until {
    ($timeout:expr, $cond:expr $(,)?) => {
        $crate::wait_until!($timeout, $cond, "{}", stringify!($cond))
    };
    ($timeout:expr, $cond:expr, $($msg:tt)+) => {
        match $crate::wait::wait_for($timeout, || $cond) {
            Ok(took) => took,
            Err(took) => panic!("not true after {:?}: {}", took, format!($($msg)+)),
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_until_true_and_gives_up() {
        let mut n = 0;
        let took = wait_for(Duration::from_secs(5), || {
            n += 1;
            n >= 3
        });
        assert!(took.is_ok());
        assert_eq!(n, 3);
        let start = Instant::now();
        assert!(wait_for(Duration::from_millis(100), || false).is_err());
        assert!(start.elapsed() >= Duration::from_millis(100));
    }

    #[test]
    #[should_panic(expected = "not true after")]
    fn macro_panics_with_condition() {
        crate::wait_until!(Duration::from_millis(50), 1 + 1 == 3);
    }
}
