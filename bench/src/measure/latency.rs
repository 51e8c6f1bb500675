//! Latency histograms (HdrHistogram, microsecond resolution) and the
//! percentiles the report shows.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Largest latency recorded exactly: one hour, in µs. Longer values are
/// clamped to it.
const MAX_MICROS: u64 = 3_600_000_000;

/// A latency histogram in microseconds, 3 significant digits.
#[derive(Clone)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// An empty histogram.
    pub fn new() -> Self {
        Self(
            Histogram::new_with_bounds(1, MAX_MICROS, 3)
                .expect("constant bounds 1..1h with 3 digits are valid"),
        )
    }

    /// Records one latency.
    pub fn record(&mut self, latency: Duration) {
        self.record_micros(u64::try_from(latency.as_micros()).unwrap_or(MAX_MICROS));
    }

    /// Records one latency given in µs (0 counts as 1 µs).
    pub fn record_micros(&mut self, micros: u64) {
        self.0.saturating_record(micros.clamp(1, MAX_MICROS));
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.0.add(&other.0);
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// The percentiles of the report, or `None` when empty.
    pub fn figures(&self, what: &str) -> Option<LatencyFigures> {
        if self.0.is_empty() {
            return None;
        }
        let ms = |q: f64| self.0.value_at_quantile(q) as f64 / 1000.0;
        Some(LatencyFigures {
            what: what.to_owned(),
            samples: self.0.len(),
            p50_ms: ms(0.50),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: self.0.max() as f64 / 1000.0,
        })
    }
}

/// Latency percentiles of one workload, milliseconds.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct LatencyFigures {
    /// What was timed ("publish request", "publish→receive", ...).
    pub what: String,
    /// Samples behind the figures.
    pub samples: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
    /// Largest sample, ms.
    pub max_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_in_milliseconds() {
        let mut a = Latency::new();
        for us in 1..=1000 {
            a.record_micros(us * 10);
        }
        let mut b = Latency::new();
        b.record(Duration::from_secs(2));
        a.merge(&b);
        let f = a.figures("x").expect("samples");
        assert_eq!(f.samples, 1001);
        assert!((f.p50_ms - 5.0).abs() < 0.05, "{f:?}");
        assert!((f.max_ms - 2000.0).abs() < 2.0, "{f:?}");
        assert!(Latency::new().figures("x").is_none());
    }
}
