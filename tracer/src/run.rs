//! Running one gadget from start to stop: load and attach, fill the filter
//! map from the collection, drain events on wake-ups and on a short timer,
//! enrich and filter them, print them, report losses every second, and stop
//! when told (Ctrl-C, SIGTERM, a client that goes away) or on the timeout.

use std::io::{self, BufWriter, Write};
use std::time::Duration;

use anyhow::Context;

use std::sync::Arc;

use crate::collection::{Change, Collection};
use crate::event::{Clock, HasCommon};
use crate::gadgets::{Column, Gadget, Named};
use crate::io::RunIo;
use crate::metrics::{Metrics, RunCounts};
use crate::output::columns::ColumnsPrinter;
use crate::output::file::OutputFile;
use crate::output::filter::Filters;
use crate::output::{MessageEvent, OutputError, OutputMode, Structured, select_columns};
use crate::run_frame::Frame;
use crate::selector::ContainerSelector;
use crate::session::{FilterMode, Session, SessionOptions};

/// The reader drains at least this often, even without a wake-up: the
/// kernel wakes it only once a batch of events is pending, so this bounds
/// how late a lone event is shown (an idle wake-up costs microseconds).
const DRAIN_INTERVAL: Duration = Duration::from_millis(10);
/// Losses are checked and reported this often.
const LOSS_REPORT_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub output: OutputMode,
    pub host: bool,
    pub selector: ContainerSelector,
    pub process: crate::process_filter::ProcessFlags,
    pub filters: Vec<String>,
    pub timeout: Option<Duration>,
    /// `--ring-buffer-size`; the gadget's own default when None.
    pub ring_bytes: Option<u32>,
    pub output_file: crate::output::file::FileFlags,
    pub metrics_address: Option<std::net::SocketAddr>,
    pub metrics_expiry: Duration,
    pub otlp: crate::otlp::OtlpFlags,
}

/// How events are printed.
enum Printer<E> {
    Columns(ColumnsPrinter<E>),
    Structured(Structured),
}

struct Sink<G: Gadget> {
    gadget: G,
    columns: Vec<Column<G::Event>>,
    filters: Filters,
    printer: Printer<G::Event>,
    clock: Clock,
    out: BufWriter<Box<dyn Write + Send>>,
    err: Box<dyn Write + Send>,
    malformed: u64,
    received: u64,
    /// Where the user or group column is shown or filtered on.
    names: Option<crate::names::NameCache>,
    /// With `--output-file`: what its writer dropped, to report.
    file: Option<OutputFile>,
    /// With `--metrics-address`: the counts since the last publication.
    counts: Option<(Arc<Metrics>, RunCounts)>,
    /// The daemon's own counting run: counts even what others leave to the daemon.
    daemon_counter: bool,
    /// With `--otlp-endpoint`: where events go besides the output.
    otlp: Option<crate::otlp::Exporter>,
    /// The selection, for events placed by network namespace.
    netns_scope: crate::unowned::NetnsScope,
}

impl<G: Gadget> Sink<G> {
    fn handle(&mut self, raw: &[u8], collection: &Collection, host: bool) -> io::Result<()> {
        let mut event = match self.gadget.decode(raw, &self.clock) {
            Ok(e) => {
                self.received += 1;
                e
            }
            Err(e) => {
                self.malformed += 1;
                tracing::debug!("dropping malformed event: {e}");
                return Ok(());
            }
        };
        let mntns = event.common().mntns;
        let stamped_boot_ns = self.clock.to_boottime(event.common().timestamp);
        event.common_mut().container = match self.gadget.unowned_netns(&event) {
            None => collection.by_mntns_at(mntns, stamped_boot_ns),
            Some(netns) => match self.netns_scope.place(collection, netns) {
                Ok(container) => {
                    // The event is the container's: its mount namespace
                    // says so, as for any other event of it.
                    event.common_mut().mntns = container.as_ref().map_or(0, |c| c.mntns);
                    container
                }
                Err(crate::unowned::Hidden) => return Ok(()),
            },
        };
        let mntns = event.common().mntns;
        if let (Some(cache), Some((uid, gid))) = (&mut self.names, event.ids()) {
            let names = cache.names(event.common().container.as_deref(), uid, gid);
            event.common_mut().names = Some(names);
        }
        if let Some((metrics, counts)) = &mut self.counts {
            counts.delivered += 1;
            let container = event.common().container.as_deref();
            self.gadget.count(&event, &mut |c| {
                // What the daemon counts itself (in the kernel, or in its
                // own counting run) is not counted twice.
                if self.daemon_counter || !metrics.counted_by_daemon(c) {
                    counts.add(mntns, container, c)
                }
            });
        }
        if event.common().container.is_none() && !host {
            // The kernel filter let it through, but the container is gone
            // from the collection: still a container event, shown unlabelled.
            tracing::debug!(mntns, "event from a container no longer in the collection");
        }
        if !self.gadget.wants(&event) || !self.filters.matches(&self.columns, &event) {
            return Ok(());
        }
        if let Some(otlp) = &self.otlp {
            otlp.send(event.common().container.clone(), &event);
        }
        match &mut self.printer {
            Printer::Columns(p) => p.write_row(&mut self.out, &event),
            Printer::Structured(style) => style.write(&mut self.out, &event),
        }
    }

    fn warn(&mut self, message: &str, lost: Option<u64>) -> io::Result<()> {
        match self.printer {
            Printer::Columns(_) => {
                self.out.flush()?;
                writeln!(self.err, "WARN: {message}")?;
                self.err.flush()
            }
            Printer::Structured(style) => {
                if self.file.is_some() {
                    // The file gets the warning as an event; whoever
                    // watches ig gets it too.
                    writeln!(self.err, "WARN: {message}")?;
                }
                let timestamp = self.clock.to_realtime(boot_ns());
                let msg = MessageEvent { timestamp, kind: "warn", message, lost_events: lost };
                style.write(&mut self.out, &msg)
            }
        }
    }
}

fn boot_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid out-pointer; CLOCK_BOOTTIME exists on every supported kernel.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Keeps the session's mount-namespace filter in step with the collection:
/// containers already known, and every one that comes or goes from now on,
/// update the filter map before their source is acknowledged. Says so when
/// no selected container runs yet.
pub fn follow_containers(
    session: &Session,
    opts: &RunOptions,
    collection: &Arc<Collection>,
    err: &mut dyn Write,
) -> Option<crate::collection::Subscription> {
    let mode = FilterMode::for_run(opts.host, &opts.selector);
    if mode == FilterMode::Off {
        return None;
    }
    let filter = session.filter();
    let selector = opts.selector.clone();
    let subscription = collection.subscribe(move |change| {
        let result = match change {
            Change::Added(r) if mode.lists(selector.matches(r)) => filter.add(r.mntns),
            Change::Added(_) => Ok(()),
            Change::Removed(r) => filter.remove(r.mntns),
        };
        if let Err(e) = result {
            tracing::warn!("updating the mount namespace filter: {e}");
        }
    });
    if !collection.snapshot().iter().any(|r| opts.selector.matches(r)) {
        let _ = writeln!(
            err,
            "ig: no matching container is running yet; containers are traced as they start (--host adds host processes)"
        );
    }
    Some(subscription)
}

/// For a gadget that places probes per container: places them for the host
/// (with --host) and every selected container, now and as they come, and
/// takes them off as containers go. Like the filter, before the source
/// that told of a container is acknowledged: a container's first process
/// is seen from its start.
pub fn place_per_container(
    probes: Option<Box<dyn crate::gadgets::PerContainer>>,
    opts: &RunOptions,
    collection: &Arc<Collection>,
    root: &std::path::Path,
) -> Option<crate::collection::Subscription> {
    let mut probes = probes?;
    if opts.host {
        probes.added(None, &|| root.to_path_buf());
    }
    let probes = std::sync::Mutex::new(probes);
    let (selector, root) = (opts.selector.clone(), root.to_path_buf());
    Some(collection.subscribe(move |change| {
        let mut probes = probes.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match change {
            Change::Added(r) if selector.matches(r) => {
                probes.added(Some(r), &|| crate::container_root::container_root(&root, r))
            }
            Change::Added(_) => {}
            Change::Removed(r) => probes.removed(&r.runtime.container_id),
        }
    }))
}

/// What a gadget run gets besides its own flags: the host's root (for
/// /proc), the container collection, where output goes and what stops it.
pub struct RunContext<'a> {
    pub root: &'a std::path::Path,
    pub collection: &'a Arc<Collection>,
    pub io: RunIo,
    /// The daemon's metrics, which every run inside it counts into.
    pub metrics: Option<Arc<Metrics>>,
}

/// Loads and attaches a trace or top gadget, then detaches it: the variant
/// the running kernel takes (`ig check`).
pub fn probe_program(gadget: &dyn crate::session::GadgetProgram) -> anyhow::Result<&'static str> {
    let session = Session::load(gadget, &SessionOptions::default())?;
    Ok(session.variant())
}

/// Runs `gadget` until stopped; returns when it has been detached.
pub async fn run_gadget<G: Gadget + Named>(gadget: G, ctx: RunContext<'_>) -> anyhow::Result<()> {
    let RunContext { root, collection, io, metrics } = ctx;
    let opts = gadget.common().run_options();
    let mut frame = Frame::open(&opts, io)?;
    let err = &mut frame.err;
    let metrics = match (opts.metrics_address, metrics) {
        (Some(_), Some(_)) => anyhow::bail!(
            "--metrics-address: this daemon serves the metrics of every gadget it runs (ig daemon --metrics-address)"
        ),
        (Some(addr), None) => {
            let metrics = Arc::new(Metrics::new(opts.metrics_expiry));
            let bound = crate::metrics::serve(addr, metrics.clone(), collection.clone())
                .await
                .with_context(|| format!("serving metrics on {addr}"))?;
            let _ = writeln!(err, "ig: metrics at http://{bound}/metrics");
            Some(metrics)
        }
        // --otlp-endpoint exports the metrics too: counted for it alone.
        (None, None) if opts.otlp.otlp_endpoint.is_some() => {
            Some(Arc::new(Metrics::new(opts.metrics_expiry)))
        }
        (None, daemon) => daemon,
    };
    let otlp = crate::otlp::Exporter::start(
        &opts.otlp,
        &G::command_name(),
        metrics.clone().map(|m| (m, collection.clone())),
    )?;
    if let Some(url) = &opts.otlp.otlp_endpoint {
        let _ = writeln!(err, "ig: exporting to OTLP at {url}");
    }
    let _running = metrics.as_ref().map(|m| m.running(&G::command_name()));
    let counts = metrics.map(|m| (m, RunCounts::default()));
    let columns = gadget.columns();
    let filters = Filters::parse(&opts.filters, &columns)?;
    let mut wants_names = crate::gadgets::wants_names(&opts.filters, None, &columns);
    let printer = match &opts.output {
        OutputMode::Columns(sel) => {
            let shown = select_columns(&columns, sel.as_ref())?;
            wants_names |= crate::gadgets::wants_names(&[], Some(&shown), &columns);
            Printer::Columns(ColumnsPrinter::new(gadget.columns(), shown, frame.terminal_width))
        }
        OutputMode::Json => Printer::Structured(Structured::Json),
        OutputMode::JsonPretty => Printer::Structured(Structured::JsonPretty),
        OutputMode::Yaml => Printer::Structured(Structured::Yaml),
        OutputMode::Folded => return Err(OutputError::NotFoldable.into()),
    };

    let filter = FilterMode::for_run(opts.host, &opts.selector);
    let session_opts = SessionOptions {
        filter,
        process: opts.process.clone(),
        ring_bytes: opts.ring_bytes.unwrap_or_else(|| gadget.ring_bytes()),
        ..Default::default()
    };
    let mut session = Session::load(&gadget, &session_opts).context("starting the gadget")?;
    // Containers already known, and every one that comes or goes from now
    // on, update the filter map before their source is acknowledged.
    let _subscription = follow_containers(&session, &opts, collection, &mut frame.err);
    let probes = place_per_container(
        gadget.per_container(&session).context("starting the gadget")?,
        &opts,
        collection,
        root,
    );
    let mut sink = Sink {
        gadget,
        columns,
        filters,
        printer,
        clock: Clock::now(),
        out: BufWriter::with_capacity(64 * 1024, std::mem::replace(&mut frame.out, Box::new(io::sink()))),
        err: std::mem::replace(&mut frame.err, Box::new(io::sink())),
        malformed: 0,
        received: 0,
        names: wants_names.then(|| crate::names::NameCache::new(root)),
        file: frame.file.take(),
        counts,
        daemon_counter: frame.daemon_counter,
        otlp,
        netns_scope: crate::unowned::NetnsScope::new(filter, opts.selector.clone(), root),
    };
    if let Printer::Columns(p) = &sink.printer {
        p.write_header(&mut sink.out)?;
        sink.out.flush()?;
    }
    frame.started();

    let mut drain_tick = tokio::time::interval(DRAIN_INTERVAL);
    drain_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut loss_tick = tokio::time::interval(LOSS_REPORT_INTERVAL);
    let (mut reported_lost, mut reported_malformed) = (0u64, 0u64);

    let result: io::Result<()> = async {
        loop {
            tokio::select! {
                r = session.readable() => { r?; }
                _ = drain_tick.tick() => {}
                _ = loss_tick.tick() => {
                    report_losses(&session, &mut sink, &mut reported_lost, &mut reported_malformed)?;
                    continue;
                }
                _ = frame.end.reached() => break,
            }
            drain(&mut session, &mut sink, collection, opts.host)?;
        }
        drain(&mut session, &mut sink, collection, opts.host)?;
        if let Some(otlp) = sink.otlp.as_mut() {
            otlp.finish().await;
        }
        report_losses(&session, &mut sink, &mut reported_lost, &mut reported_malformed)?;
        sink.out.flush()
    }
    .await;
    tracing::info!(
        received = sink.received,
        lost = session.lost(),
        malformed = sink.malformed,
        "tracing stopped"
    );
    drop(probes); // its links hold the programs
    drop(session); // detaches every program before we return
    let Sink { out, file, err, .. } = sink;
    drop(out); // before the file is finished: it may write into it
    (frame.file, frame.err) = (file, err);
    frame.finish(result.map_err(anyhow::Error::from), "writing events")
}

fn drain<G: Gadget>(
    session: &mut Session,
    sink: &mut Sink<G>,
    collection: &Collection,
    host: bool,
) -> io::Result<()> {
    let mut result = Ok(());
    session.drain(|raw| {
        if result.is_ok() {
            result = sink.handle(raw, collection, host);
        }
    });
    result?;
    sink.out.flush()
}

fn report_losses<G: Gadget + Named>(
    session: &Session,
    sink: &mut Sink<G>,
    reported_lost: &mut u64,
    reported_malformed: &mut u64,
) -> io::Result<()> {
    let lost = session.lost();
    if let Some((metrics, counts)) = &mut sink.counts {
        metrics.publish(&G::command_name(), counts, lost - *reported_lost);
    }
    if lost > *reported_lost {
        let n = lost - *reported_lost;
        *reported_lost = lost;
        let msg = format!(
            "lost {n} events: the ring buffer was full (total lost: {lost}; --ring-buffer-size raises it)"
        );
        sink.warn(&msg, Some(n))?;
    }
    if let Some(f) = sink.file.as_mut()
        && let Some((n, why)) = f.new_drops()
    {
        let msg = f.drop_message(n, &why);
        sink.warn(&msg, Some(n))?;
    }
    if let Some(otlp) = sink.otlp.as_mut()
        && let Some((dropped, failures, why)) = otlp.new_trouble()
    {
        let msg = match dropped {
            0 => format!("OTLP: {failures} exports failed, retrying: {why}"),
            n => {
                format!("dropped {n} events for OTLP: its queue was full ({failures} exports failed: {why})")
            }
        };
        sink.warn(&msg, (dropped > 0).then_some(dropped))?;
    }
    if sink.malformed > *reported_malformed {
        let n = sink.malformed - *reported_malformed;
        *reported_malformed = sink.malformed;
        sink.warn(&format!("dropped {n} malformed events"), Some(n))?;
    }
    Ok(())
}
