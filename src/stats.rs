//! Counters and histograms that many threads add to without locks: frame delivery per
//! viewer, and capture-to-send latency per camera; and the calling thread's CPU time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram's buckets, in milliseconds (the last bucket,
/// past these, is unbounded).
pub const LATENCY_BUCKETS_MS: [f64; 12] = [
    1.0, 2.0, 5.0, 10.0, 20.0, 33.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 5000.0,
];

/// CPU time the calling thread has used (`CLOCK_THREAD_CPUTIME_ID`). Unlike a wall clock,
/// it leaves out the time the thread waited for a core, so on a busy machine it still
/// measures the work itself.
#[must_use]
pub fn thread_cpu_time() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a timespec for the call to fill.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut t) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// A histogram of durations with fixed buckets.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    buckets: [AtomicU64; LATENCY_BUCKETS_MS.len() + 1],
    sum_micros: AtomicU64,
}

/// A copy of a histogram's counts at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramSnapshot {
    /// Count per bucket, the last one unbounded; not cumulative.
    pub counts: Vec<u64>,
    /// Sum of all observations, in seconds.
    pub sum_seconds: f64,
}

impl LatencyHistogram {
    /// Adds one observation.
    pub fn observe(&self, d: Duration) {
        let ms = d.as_secs_f64() * 1000.0;
        let i = LATENCY_BUCKETS_MS
            .iter()
            .position(|b| ms <= *b)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            counts: self
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            sum_seconds: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

impl HistogramSnapshot {
    /// Total observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The upper bound of the bucket holding quantile `q` (0..=1), in milliseconds;
    /// `None` without observations.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(LATENCY_BUCKETS_MS.get(i).copied().unwrap_or(f64::INFINITY));
            }
        }
        None
    }

    /// The counts gained since `earlier`.
    pub fn since(&self, earlier: &HistogramSnapshot) -> HistogramSnapshot {
        HistogramSnapshot {
            counts: self
                .counts
                .iter()
                .enumerate()
                .map(|(i, c)| c - earlier.counts.get(i).copied().unwrap_or(0))
                .collect(),
            sum_seconds: self.sum_seconds - earlier.sum_seconds,
        }
    }
}

/// What one viewer (an MJPEG stream or a WebSocket subscription) got from one camera.
#[derive(Debug, Default)]
pub struct ViewerCounters {
    /// Frames sent.
    pub sent: AtomicU64,
    /// Frames that were replaced by a newer one before this viewer could take them.
    pub skipped: AtomicU64,
    /// Bytes of JPEG sent.
    pub bytes: AtomicU64,
    /// Microseconds from watching to the first frame sent, plus one (0: none sent yet).
    /// An H.264 viewer's first frame is a keyframe, so this is its keyframe wait.
    pub first_frame_wait_us: AtomicU64,
}

impl ViewerCounters {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_cpu_time_counts_work_not_waiting() {
        let before = thread_cpu_time();
        std::thread::sleep(Duration::from_millis(200));
        let slept = thread_cpu_time().saturating_sub(before);
        assert!(
            slept < Duration::from_millis(100),
            "{slept:?} of CPU while asleep"
        );
        // Work advances it: 20 ms of CPU, within a wall-clock bound that a loaded machine
        // still meets, so a clock that never moves fails instead of hanging.
        let before = thread_cpu_time();
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while thread_cpu_time().saturating_sub(before) < Duration::from_millis(20) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no CPU time counted in 10 s of work"
            );
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
    }

    #[test]
    fn quantiles_come_from_buckets() {
        let h = LatencyHistogram::default();
        for ms in [1, 3, 3, 3, 8, 8, 8, 8, 8, 400] {
            h.observe(Duration::from_millis(ms));
        }
        let s = h.snapshot();
        assert_eq!(s.count(), 10);
        assert_eq!(s.quantile_ms(0.5), Some(10.0));
        assert_eq!(s.quantile_ms(0.99), Some(500.0));
        assert_eq!(HistogramSnapshot::default().quantile_ms(0.5), None);
    }
}
