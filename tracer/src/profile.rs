//! Running a `profile` gadget: the kernel sums a distribution (a histogram
//! of power-of-two buckets) while the gadget runs; when it is stopped
//! (Ctrl-C, `-t`) the histogram is read once and printed: as bars in
//! columns mode, as one JSON object otherwise.

use std::io::Write;

use anyhow::Context;
use serde::Serialize;

use crate::cli::CommonFlags;
use crate::io::RunIo;
use crate::output::OutputMode;
use crate::run::{RunContext, follow_containers};
use crate::session::{FilterMode, GadgetProgram, Session, SessionError, SessionOptions};

pub trait ProfileGadget: GadgetProgram {
    /// The flags every gadget takes, as given.
    fn common(&self) -> &CommonFlags;

    /// What the buckets count, e.g. `latency`, and in which unit (`us`).
    fn measure(&self) -> (&'static str, &'static str);

    /// Reads the kernel's histogram: count per bucket index.
    fn collect(&self, session: &mut Session) -> Result<Vec<(u32, u64)>, SessionError>;
}

/// A distribution over power-of-two buckets: bucket 0 holds [0, 1), bucket
/// k holds [2^(k-1), 2^k).
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Histogram {
    pub measure: &'static str,
    pub unit: &'static str,
    pub intervals: Vec<Interval>,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Interval {
    pub start: u64,
    /// Exclusive.
    pub end: u64,
    pub count: u64,
}

/// The most buckets a histogram has (values up to 2^63).
const MAX_BUCKETS: u32 = 64;

impl Histogram {
    /// From counts per bucket, from bucket 0 to the last one used (none: no
    /// interval at all).
    pub fn new(measure: &'static str, unit: &'static str, counts: &[(u32, u64)]) -> Self {
        let last = counts.iter().filter(|(_, n)| *n > 0).map(|(b, _)| (*b).min(MAX_BUCKETS - 1)).max();
        let intervals = match last {
            None => Vec::new(),
            Some(last) => (0..=last)
                .map(|b| Interval {
                    start: if b == 0 { 0 } else { 1u64 << (b - 1) },
                    end: 1u64 << b,
                    count: counts
                        .iter()
                        .filter(|(k, _)| (*k).min(MAX_BUCKETS - 1) == b)
                        .map(|(_, n)| n)
                        .sum(),
                })
                .collect(),
        };
        Self { measure, unit, intervals }
    }

    pub fn total(&self) -> u64 {
        self.intervals.iter().map(|i| i.count).sum()
    }

    /// The bars: `start -> end : count |****|`, 40 stars for the largest.
    pub fn write_bars(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let title = format!("{} ({})", self.measure, self.unit);
        writeln!(out, "{title:>24} : {:<8} distribution", "count")?;
        let max = self.intervals.iter().map(|i| i.count).max().unwrap_or(0).max(1);
        for i in &self.intervals {
            let stars = (i.count * 40).div_ceil(max) as usize;
            let range = format!("{} -> {}", i.start, i.end - 1);
            writeln!(out, "{range:>24} : {:<8} |{:<40}|", i.count, "*".repeat(stars))?;
        }
        if self.intervals.is_empty() {
            writeln!(out, "(nothing measured)")?;
        }
        Ok(())
    }
}

/// Runs a profile gadget until stopped (or `-t`), then prints its histogram.
pub async fn run_profile<G: ProfileGadget>(gadget: G, ctx: RunContext<'_>) -> anyhow::Result<()> {
    let RunContext { collection, io, .. } = ctx;
    let opts = gadget.common().run_options();
    anyhow::ensure!(opts.filters.is_empty(), "-F: a profile has no rows to filter");
    anyhow::ensure!(
        opts.metrics_address.is_none() && opts.otlp.otlp_endpoint.is_none(),
        "--metrics-address and --otlp-endpoint: only the trace gadgets export so far"
    );
    let RunIo { out, mut err, stop, started, tee, .. } = io;
    let (mut out, mut file) =
        crate::output::file::redirect(&opts.output_file, &opts.output, out, tee, &mut err)?;
    let filter = FilterMode::for_run(opts.host, &opts.selector);
    // No events go through the ring buffer: the smallest one will do.
    let session_opts =
        SessionOptions { filter, process: opts.process.clone(), ring_bytes: 4096, ..Default::default() };
    let mut session = Session::load(&gadget, &session_opts).context("starting the gadget")?;
    let _subscription = follow_containers(&session, &opts, collection, &mut err);
    tracing::info!("tracing started");
    if let Some(started) = started {
        started();
    }
    if matches!(opts.output, OutputMode::Columns(_)) && opts.timeout.is_none() {
        let _ = writeln!(err, "ig: measuring; Ctrl-C prints the histogram");
    }
    let deadline = async {
        match opts.timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = stop => {}
        _ = deadline => {}
    }
    let counts = gadget.collect(&mut session).context("reading the histogram")?;
    drop(session);
    let (measure, unit) = gadget.measure();
    let hist = Histogram::new(measure, unit, &counts);
    tracing::info!(total = hist.total(), "tracing stopped");
    let written = match opts.output.structured() {
        None => hist.write_bars(&mut out),
        Some(style) => style.write(&mut out, &hist),
    };
    let written = written.and_then(|()| out.flush());
    drop(out);
    if let Some(f) = file.as_mut() {
        crate::run::finish_file(f, &mut *err);
    }
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing the histogram"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_powers_of_two_up_to_the_last_one_used() {
        let h = Histogram::new("latency", "us", &[(0, 1), (3, 5), (1, 0)]);
        let got: Vec<(u64, u64, u64)> = h.intervals.iter().map(|i| (i.start, i.end, i.count)).collect();
        assert_eq!(got, [(0, 1, 1), (1, 2, 0), (2, 4, 0), (4, 8, 5)]);
        assert_eq!(h.total(), 6);
        let mut text = Vec::new();
        h.write_bars(&mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("4 -> 7 : 5        |****************************************|"), "{text}");
        assert!(Histogram::new("latency", "us", &[]).intervals.is_empty());
    }
}
