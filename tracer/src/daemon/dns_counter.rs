//! DNS metrics with no gadget running: with `--metrics-address` or
//! `--otlp-endpoint`, the daemon runs `trace dns --host` of its own, with no
//! output, only to count queries, responses by rcode and their latency for
//! every container (and the host). DNS is few packets: decoding them in
//! user space is cheap, and it is what pairs a response with its query
//! (the latency histogram). The kernel side is trace dns's own. Every other
//! run leaves DNS to it, so nothing is counted twice; if it cannot start or
//! ends, the gadgets that run count DNS again and the log says why.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crate::io::RunIo;
use crate::metrics::Metrics;

use super::instances::{Runner, prepare};

/// How long the daemon waits for the counter to attach before it says it is ready.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The running counter; dropping it stops it.
pub struct DnsCounter {
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Starts the counter and waits until it traces (or failed).
pub async fn start(runner: &Runner, metrics: Arc<Metrics>) -> Option<DnsCounter> {
    // A ring of 512 KiB, not trace dns's 4 MiB: the kernel maps a ring
    // twice, resident from the start, and this one runs on every node for
    // as long as the daemon does. Hundreds of DNS packets fit between two
    // drains; a burst beyond is counted as lost (ig_gadget_events_lost_total).
    let args: Vec<String> =
        ["trace", "dns", "--host", "--ring-buffer-size", "524288"].iter().map(|s| s.to_string()).collect();
    let command = match prepare(&args) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("DNS counter: {e}; DNS metrics come from the gadgets that run");
            return None;
        }
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let (on, off) = (metrics.clone(), metrics);
    let io = RunIo {
        out: Box::new(std::io::sink()),
        err: Box::new(LogLines::default()),
        terminal_width: None,
        stop: Box::pin(async move {
            let _ = stop_rx.await;
        }),
        started: Some(Box::new(move || {
            on.set_daemon_counts_dns(true);
            let _ = started_tx.send(());
        })),
        tee: false,
        daemon_counter: true,
    };
    let done = Box::new(move |result: Result<(), String>| {
        off.set_daemon_counts_dns(false);
        match result {
            Ok(()) => tracing::debug!("DNS counter stopped"),
            Err(e) => tracing::warn!("DNS counter ended: {e}; DNS metrics come from the gadgets that run"),
        }
    });
    if let Err(e) = super::spawn_command(command, runner, io, "ig-dns-counter", done) {
        tracing::warn!("DNS counter: {e}; DNS metrics come from the gadgets that run");
        return None;
    }
    match tokio::time::timeout(START_TIMEOUT, started_rx).await {
        Ok(Ok(())) => {
            tracing::info!("counting DNS queries, responses and their latency (the daemon's own trace dns)");
            Some(DnsCounter { _stop: stop_tx })
        }
        // Ended before it started: `done` has said why.
        Ok(Err(_)) => None,
        Err(_) => {
            tracing::warn!("DNS counter: not started after {START_TIMEOUT:?}; still trying");
            Some(DnsCounter { _stop: stop_tx })
        }
    }
}

/// The counter's messages for a user (lost events, hints): into the log, one line each.
#[derive(Default)]
struct LogLines {
    pending: Vec<u8>,
}

impl Write for LogLines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        while let Some(at) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=at).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]);
            if !text.trim().is_empty() {
                tracing::warn!("DNS counter: {}", text.trim_start_matches("WARN: "));
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
