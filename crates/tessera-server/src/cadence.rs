//! How often the applier commits: at least a floor apart, and at least `factor` times as long
//! apart as the last such commit took.
//!
//! Profile updates touch SQLite pages at random and every commit writes each page it touched
//! in full, so a commit's cost grows with the pages it touches, not with its events: under
//! light load small commits are cheap and frequent; under heavy load the interval stretches
//! until each commit carries enough events to pay for its pages. The price of a longer
//! interval is a longer replay of the log after a crash.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Cadence {
    floor: Duration,
    factor: u32,
    last: Instant,
    last_took: Duration,
}

impl Cadence {
    pub fn new(floor: Duration, factor: u32) -> Cadence {
        Cadence {
            floor,
            factor,
            last: Instant::now(),
            last_took: Duration::ZERO,
        }
    }

    fn interval(&self) -> Duration {
        self.floor.max(self.last_took * self.factor)
    }

    pub fn due(&self) -> bool {
        self.last.elapsed() >= self.interval()
    }

    /// Time left until the next commit is due.
    pub fn remaining(&self) -> Duration {
        self.interval().saturating_sub(self.last.elapsed())
    }

    /// Records that a commit was handed over now.
    pub fn started(&mut self) {
        self.last = Instant::now();
    }

    /// Records how long the last commit took.
    pub fn took(&mut self, d: Duration) {
        self.last_took = d;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_commit_stretches_the_interval() {
        let mut c = Cadence::new(Duration::from_millis(10), 4);
        c.started();
        assert!(!c.due());
        c.took(Duration::from_secs(5));
        assert!(c.remaining() > Duration::from_secs(19));
        c.took(Duration::ZERO);
        assert!(c.remaining() <= Duration::from_millis(10));
    }
}
