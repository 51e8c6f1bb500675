//! The server process's own resource use, as the OpenTelemetry semantic
//! conventions for OS process metrics name it (semconv v1.45.0,
//! `docs/system/process-metrics.md`): CPU time by mode, resident and
//! virtual memory, threads and open file descriptors.
//!
//! Read from `/proc/self` (through the `procfs` crate) each time metrics
//! are collected, so a scrape sees the values of that moment and nothing
//! runs in between. On other systems the instruments are not registered.

use opentelemetry::metrics::Meter;

/// Registers the process instruments on `meter` (Linux only).
pub(super) fn register(meter: &Meter) {
    #[cfg(target_os = "linux")]
    linux::register(meter);
    #[cfg(not(target_os = "linux"))]
    let _ = meter;
}

#[cfg(target_os = "linux")]
mod linux {
    use opentelemetry::KeyValue;
    use opentelemetry::metrics::Meter;
    use procfs::process::{Process, Stat};

    /// `cpu.mode` of `process.cpu.time`: the conventions' `user` and `system`.
    fn cpu_mode(mode: &'static str) -> [KeyValue; 1] {
        [KeyValue::new("cpu.mode", mode)]
    }

    /// `/proc/self/stat`, or nothing when it cannot be read (a collection
    /// then simply has no process values: metrics never fail a scrape).
    fn stat() -> Option<Stat> {
        Process::myself().and_then(|p| p.stat()).ok()
    }

    pub(super) fn register(meter: &Meter) {
        // Kernel clock ticks per second and the page size: fixed for the
        // life of the process.
        let ticks = procfs::ticks_per_second().max(1) as f64;
        let page = procfs::page_size();
        meter
            .f64_observable_counter("process.cpu.time")
            .with_unit("s")
            .with_description("Total CPU seconds of the process, by cpu.mode")
            .with_callback(move |o| {
                if let Some(s) = stat() {
                    o.observe(s.utime as f64 / ticks, &cpu_mode("user"));
                    o.observe(s.stime as f64 / ticks, &cpu_mode("system"));
                }
            })
            .build();
        meter
            .i64_observable_up_down_counter("process.memory.usage")
            .with_unit("By")
            .with_description("Physical memory in use (resident set size)")
            .with_callback(move |o| {
                if let Some(s) = stat() {
                    o.observe(
                        i64::try_from(s.rss.saturating_mul(page)).unwrap_or(i64::MAX),
                        &[],
                    );
                }
            })
            .build();
        meter
            .i64_observable_up_down_counter("process.memory.virtual")
            .with_unit("By")
            .with_description("Committed virtual memory")
            .with_callback(|o| {
                if let Some(s) = stat() {
                    o.observe(i64::try_from(s.vsize).unwrap_or(i64::MAX), &[]);
                }
            })
            .build();
        meter
            .i64_observable_up_down_counter("process.thread.count")
            .with_unit("{thread}")
            .with_description("Threads of the process")
            .with_callback(|o| {
                if let Some(s) = stat() {
                    o.observe(s.num_threads, &[]);
                }
            })
            .build();
        meter
            .i64_observable_up_down_counter("process.unix.file_descriptor.count")
            .with_unit("{file_descriptor}")
            .with_description("Open file descriptors: connections, database files, the listeners")
            .with_callback(|o| {
                if let Ok(n) = Process::myself().and_then(|p| p.fd_count()) {
                    o.observe(i64::try_from(n).unwrap_or(i64::MAX), &[]);
                }
            })
            .build();
    }
}
