//! Progress display: indicatif bars on a terminal, one plain line per step
//! otherwise (logs stay readable when stderr is a file).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where progress goes.
pub struct Progress {
    bars: Option<MultiProgress>,
}

impl Progress {
    /// Bars when stderr is a terminal and `allowed`, plain lines otherwise.
    pub fn new(allowed: bool) -> Self {
        let bars = (allowed && std::io::stderr().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Self { bars }
    }

    /// Says what is happening now (above the bars, or as a line).
    pub fn step(&self, message: &str) {
        match &self.bars {
            Some(bars) => {
                let _ = bars.println(message);
            }
            None => eprintln!("{message}"),
        }
    }

    /// A bar over `total` milliseconds of a timed window.
    pub fn timer(&self, label: &str, total: Duration) -> ProgressBar {
        self.bar(
            label,
            u64::try_from(total.as_millis()).unwrap_or(u64::MAX),
            "{prefix:>28} [{bar:30}] {elapsed}/{duration}",
        )
    }

    /// A bar over `total` items.
    pub fn counter(&self, label: &str, total: u64) -> ProgressBar {
        self.bar(
            label,
            total,
            "{prefix:>28} [{bar:30}] {human_pos}/{human_len} ({per_sec})",
        )
    }

    fn bar(&self, label: &str, total: u64, template: &str) -> ProgressBar {
        let Some(bars) = &self.bars else {
            return ProgressBar::hidden();
        };
        let bar = bars.add(ProgressBar::new(total));
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(label.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }
}
