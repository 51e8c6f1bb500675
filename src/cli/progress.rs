//! Progress of a bulk publish: a live counter on stderr when it is a
//! terminal, and one summary line (events, bytes, rate) at the end either
//! way. Stdout keeps one line per event for scripts.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressStyle};

/// Counts what a bulk publish appended.
pub struct BulkProgress {
    /// Drawn only when stderr is a terminal.
    bar: Option<ProgressBar>,
    started: Instant,
    events: u64,
    duplicates: u64,
    bytes: u64,
}

impl BulkProgress {
    /// Starts counting (and drawing, on a terminal).
    pub fn start() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) =
                ProgressStyle::with_template("{spinner} published {pos} events, {msg}")
            {
                bar.set_style(style);
            }
            bar.set_message(HumanBytes(0).to_string());
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Self {
            bar,
            started: Instant::now(),
            events: 0,
            duplicates: 0,
            bytes: 0,
        }
    }

    /// A batch was answered: `events` of `bytes` encoded bytes, of which
    /// `duplicates` were already in the stream.
    pub fn answered(&mut self, events: u64, duplicates: u64, bytes: u64) {
        self.events += events;
        self.duplicates += duplicates;
        self.bytes += bytes;
        if let Some(bar) = &self.bar {
            let secs = self.started.elapsed().as_secs_f64().max(1e-6);
            bar.set_position(self.events);
            bar.set_message(format!(
                "{}, {:.0} events/s",
                HumanBytes(self.bytes),
                self.events as f64 / secs
            ));
        }
    }

    /// Runs `print` with the counter off the screen, so lines written to
    /// the same terminal do not run into it.
    pub fn suspend<T>(&self, print: impl FnOnce() -> T) -> T {
        match &self.bar {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }

    /// Clears the counter and prints the summary line on stderr.
    pub fn finish(self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        eprintln!(
            "{}",
            summary(
                self.events,
                self.duplicates,
                self.bytes,
                self.started.elapsed()
            )
        );
    }
}

/// `published 1000 events (245.10 KiB) in 0.52s: 1923 events/s, 471.35 KiB/s`,
/// plus how many of them were duplicates when any were.
pub fn summary(events: u64, duplicates: u64, bytes: u64, elapsed: Duration) -> String {
    // A run can be faster than the clock's resolution.
    let secs = elapsed.as_secs_f64().max(1e-6);
    let mut line = format!(
        "published {events} events ({}) in {:.2}s: {:.0} events/s, {}/s",
        HumanBytes(bytes),
        elapsed.as_secs_f64(),
        events as f64 / secs,
        HumanBytes((bytes as f64 / secs) as u64)
    );
    if duplicates > 0 {
        line += &format!("; {duplicates} of them were duplicates, not appended again");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_gives_events_bytes_and_rates() {
        assert_eq!(
            summary(1000, 0, 2048, Duration::from_secs(2)),
            "published 1000 events (2.00 KiB) in 2.00s: 500 events/s, 1.00 KiB/s"
        );
        assert!(
            summary(3, 1, 10, Duration::ZERO)
                .ends_with("; 1 of them were duplicates, not appended again")
        );
    }
}
