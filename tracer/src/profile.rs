//! Running a `profile` gadget: the kernel sums what it measures while the
//! gadget runs; when it is stopped (Ctrl-C, `-t`) the result is read once
//! and printed. Most profiles are a distribution (a histogram of
//! power-of-two buckets: bars in columns mode, one JSON object otherwise);
//! `profile cpu` writes sampled stacks (its own report).

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use serde::Serialize;

use crate::cli::CommonFlags;
use crate::collection::{Change, Collection, Subscription};
use crate::gadgets::PerContainer;
use crate::output::OutputMode;
use crate::run::{RunContext, RunOptions, follow_containers};
use crate::run_frame::Frame;
use crate::selector::ContainerSelector;
use crate::session::{FilterMode, GadgetProgram, Session, SessionError, SessionOptions};
use crate::unowned::NetnsScope;

/// A gadget the `profile` runner runs.
pub trait ProfileGadget: GadgetProgram {
    /// The flags every gadget takes, as given.
    fn common(&self) -> &CommonFlags;

    /// Refuses flags this gadget cannot honour, before anything loads.
    fn check(&self, opts: &RunOptions) -> anyhow::Result<()>;

    /// The session's settings, from the runner's.
    fn session_options(&self, opts: SessionOptions) -> SessionOptions {
        opts
    }

    /// Reads what the kernel measured and writes it.
    fn report(&self, session: &mut Session, report: Report<'_, '_>) -> anyhow::Result<()>;

    /// Called once loaded, before the run is said to have started (tables
    /// the kernel side reads); nothing by default.
    fn prepare(&self, _session: &mut Session) -> anyhow::Result<()> {
        Ok(())
    }

    /// An event the kernel side sent during the run (most send none).
    fn event(&self, _session: &mut Session, _raw: &[u8], _report: Report<'_, '_>) -> anyhow::Result<()> {
        Ok(())
    }

    /// A container left the collection during the run: what the kernel
    /// keeps of it can go.
    fn container_gone(&self, _session: &mut Session, _mntns: u64) {}

    /// What the kernel side is told of each selected container as it
    /// comes and goes (see [`crate::gadgets::PerContainer`]); None by default.
    fn per_container(&self, _session: &Session) -> Result<Option<Box<dyn PerContainer>>, SessionError> {
        Ok(None)
    }

    /// A run that needs no kernel (advice from a saved log): done here,
    /// before anything loads, when Some. None by default.
    fn without_kernel(&self, _out: &mut dyn Write, _err: &mut dyn Write) -> Option<anyhow::Result<()>> {
        None
    }
}

/// What a profile's report needs besides its session.
pub struct Report<'a, 'w> {
    pub out: &'a mut (dyn Write + 'w),
    pub err: &'a mut (dyn Write + 'w),
    pub opts: &'a RunOptions,
    pub collection: &'a Collection,
    /// Where events of no known process belong (see unowned.rs).
    pub scope: &'a NetnsScope,
    pub terminal_width: Option<usize>,
    pub seen: &'a SeenContainers,
    /// The host's root (for /proc).
    pub root: &'a std::path::Path,
}

impl Report<'_, '_> {
    /// The container of a mount namespace this run traced, even one gone
    /// long before the report (the collection forgets those). Only the
    /// run's own containers: the kernel reuses a namespace's number, and a
    /// container the run does not select that took the number after the
    /// one it measured must not put its name on that one's result.
    pub fn container(&self, mntns: u64) -> Option<Arc<shared::ContainerRecord>> {
        self.seen.get(mntns)
    }
}

/// Every container a profile measured (those its selection admits): its counts are
/// read at the end, when a container that stopped early is no longer in
/// the collection. Containers gone are kept up to [`MAX_GONE`] (the most
/// recent), so a run of days on a node with churn stays bounded. A mount
/// namespace number the kernel reuses for a later container is that
/// container's: the kernel's counts are keyed by the number too.
#[derive(Default)]
pub struct SeenContainers {
    inner: Arc<Mutex<Seen>>,
}

/// How many stopped containers a profile remembers.
pub const MAX_GONE: usize = 4096;

#[derive(Default)]
struct Seen {
    by_mntns: HashMap<u64, Arc<shared::ContainerRecord>>,
    /// Stopped ones, oldest first.
    gone: std::collections::VecDeque<Arc<shared::ContainerRecord>>,
}

impl Seen {
    fn change(&mut self, change: &Change) {
        match change {
            Change::Added(r) => {
                self.by_mntns.insert(r.mntns, r.clone());
            }
            Change::Removed(r) => {
                self.gone.push_back(r.clone());
                while self.gone.len() > MAX_GONE {
                    let Some(old) = self.gone.pop_front() else { break };
                    // Unless a later container took its number.
                    if self.by_mntns.get(&old.mntns).is_some_and(|now| Arc::ptr_eq(now, &old)) {
                        self.by_mntns.remove(&old.mntns);
                    }
                }
            }
        }
    }
}

impl SeenContainers {
    /// Starts remembering the collection's containers that `selector`
    /// admits, present and to come.
    pub fn follow(collection: &Arc<Collection>, selector: ContainerSelector) -> (Self, Subscription) {
        let seen = Self::default();
        let inner = seen.inner.clone();
        let subscription = collection.subscribe(move |change| {
            let (Change::Added(r) | Change::Removed(r)) = change;
            if selector.matches(r) {
                inner.lock().unwrap_or_else(|e| e.into_inner()).change(change);
            }
        });
        (seen, subscription)
    }

    fn get(&self, mntns: u64) -> Option<Arc<shared::ContainerRecord>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).by_mntns.get(&mntns).cloned()
    }
}

/// A profile whose result is a distribution.
pub trait HistogramGadget: GadgetProgram {
    /// The flags every gadget takes, as given.
    fn common(&self) -> &CommonFlags;

    /// What the buckets count, e.g. `latency`, and in which unit (`us`).
    fn measure(&self) -> (&'static str, &'static str);

    /// What a bucket's group names (with more than one histogram).
    fn group_label(&self) -> GroupLabel {
        GroupLabel::Address
    }

    /// Reads the kernel's histograms: counts per bucket index.
    fn collect(&self, session: &mut Session) -> Result<Vec<Bucket>, SessionError>;
}

impl<G: HistogramGadget> ProfileGadget for G {
    fn common(&self) -> &CommonFlags {
        HistogramGadget::common(self)
    }

    fn check(&self, opts: &RunOptions) -> anyhow::Result<()> {
        anyhow::ensure!(opts.filters.is_empty(), "-F: a histogram has no rows to filter");
        opts.output.refuse_folded()?;
        Ok(())
    }

    fn report(&self, session: &mut Session, mut r: Report<'_, '_>) -> anyhow::Result<()> {
        let buckets = self.collect(session).context("reading the histogram")?;
        let label = self.group_label();
        let hists =
            histograms(self.measure(), label, buckets, |netns| r.scope.place(r.collection, netns).is_ok());
        tracing::info!(total = hists.iter().map(Histogram::total).sum::<u64>(), "tracing stopped");
        let written = hists.iter().try_for_each(|h| match r.opts.output.structured() {
            None => h.write_bars(r.out),
            Some(style) => style.write(&mut r.out, h),
        });
        written.and_then(|()| r.out.flush()).map_err(Into::into)
    }
}

/// What the groups of a histogram gadget are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupLabel {
    /// A peer address (profile tcprtt -b/-B).
    Address,
    /// A block device's name (profile block-io --per-disk).
    Disk,
}

/// One bucket of the kernel's counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket {
    pub whose: Whose,
    /// Which histogram (e.g. an address with -b); empty: the only one.
    pub group: String,
    pub index: u32,
    pub count: u64,
}

/// Who the counts are of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whose {
    /// A process the kernel's filters let through.
    Selected,
    /// No known process: whatever happened in this network namespace (see
    /// unowned.rs), selected here.
    Netns(u64),
}

/// A distribution over power-of-two buckets: bucket 0 holds [0, 1), bucket
/// k holds [2^(k-1), 2^k).
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Histogram {
    /// With -b/-B: the address these counts are of.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub address: String,
    /// With --per-disk: the device these counts are of (`sda`, `loop3`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub disk: String,
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
        Self { address: String::new(), disk: String::new(), measure, unit, intervals }
    }

    pub fn total(&self) -> u64 {
        self.intervals.iter().map(|i| i.count).sum()
    }

    /// The bars: `start -> end : count |****|`, 40 stars for the largest.
    pub fn write_bars(&self, out: &mut dyn Write) -> std::io::Result<()> {
        if !self.address.is_empty() {
            writeln!(out, "address = {}", self.address)?;
        }
        if !self.disk.is_empty() {
            writeln!(out, "disk = {}", self.disk)?;
        }
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

/// One histogram per group, in group order (one, empty, when nothing was
/// measured); `shown` says whether a network namespace's counts belong to
/// the run's selection.
fn histograms(
    (measure, unit): (&'static str, &'static str),
    label: GroupLabel,
    buckets: Vec<Bucket>,
    shown: impl Fn(u64) -> bool,
) -> Vec<Histogram> {
    let mut groups: std::collections::BTreeMap<String, Vec<(u32, u64)>> = Default::default();
    for b in buckets {
        if let Whose::Netns(netns) = b.whose
            && !shown(netns)
        {
            continue;
        }
        groups.entry(b.group).or_default().push((b.index, b.count));
    }
    if groups.is_empty() {
        return vec![Histogram::new(measure, unit, &[])];
    }
    groups
        .into_iter()
        .map(|(group, counts)| {
            let h = Histogram::new(measure, unit, &counts);
            match label {
                GroupLabel::Address => Histogram { address: group, ..h },
                GroupLabel::Disk => Histogram { disk: group, ..h },
            }
        })
        .collect()
}

/// Runs a profile gadget until stopped (or `-t`), then has it report.
pub async fn run_profile<G: ProfileGadget>(gadget: G, ctx: RunContext<'_>) -> anyhow::Result<()> {
    let RunContext { collection, io, root: ctx_root, .. } = ctx;
    let opts = gadget.common().run_options();
    gadget.check(&opts)?;
    Frame::refuse_exports(&opts)?;
    let mut frame = Frame::open(&opts, io)?;
    if let Some(done) = gadget.without_kernel(&mut frame.out, &mut frame.err) {
        return done;
    }
    let filter = FilterMode::for_run(opts.host, &opts.selector);
    // No events go through the ring buffer: the smallest one will do.
    let session_opts = gadget.session_options(SessionOptions {
        filter,
        process: opts.process.clone(),
        ring_bytes: 4096,
        ..Default::default()
    });
    let mut session = Session::load(&gadget, &session_opts).context("starting the gadget")?;
    gadget.prepare(&mut session).context("starting the gadget")?;
    let (seen, _seen_subscription) = SeenContainers::follow(collection, opts.selector.clone());
    let _subscription = follow_containers(&session, &opts, collection, &mut frame.err);
    let per_container = gadget.per_container(&session).context("starting the gadget")?;
    let _per_container = crate::run::place_per_container(per_container, &opts, collection, ctx_root);
    let (gone_tx, mut gone) = tokio::sync::mpsc::unbounded_channel();
    let _gone_subscription = collection.subscribe(move |change| {
        if let Change::Removed(r) = change {
            let _ = gone_tx.send(r.mntns);
        }
    });
    frame.started();
    if matches!(opts.output, OutputMode::Columns(_)) && opts.timeout.is_none() {
        let _ = writeln!(frame.err, "ig: measuring; Ctrl-C prints the result");
    }
    let terminal_width = frame.terminal_width;
    let scope = NetnsScope::new(filter, opts.selector.clone(), ctx_root);
    macro_rules! report {
        () => {
            Report {
                out: &mut frame.out,
                err: &mut frame.err,
                opts: &opts,
                collection,
                scope: &scope,
                terminal_width,
                seen: &seen,
                root: ctx_root,
            }
        };
    }
    // Hands every event waiting in the ring buffer to the gadget, in order.
    macro_rules! handle_pending {
        () => {{
            let mut events = Vec::new();
            session.drain(|raw| events.push(raw.to_vec()));
            events.iter().try_for_each(|raw| gadget.event(&mut session, raw, report!()))
        }};
    }
    let mut written = Ok(());
    loop {
        tokio::select! {
            _ = frame.end.reached() => break,
            ready = session.readable() => {
                ready.context("waiting for the kernel's events")?;
                written = handle_pending!();
                if written.is_err() {
                    break;
                }
            }
            Some(mntns) = gone.recv() => {
                // The kernel wrote the container's last events (traceloop's
                // exit of its first process) before the exit that removed it
                // could be seen: handle them first, or they would find what
                // they report already forgotten.
                written = handle_pending!();
                if written.is_err() {
                    break;
                }
                gadget.container_gone(&mut session, mntns);
            }
        }
    }
    if written.is_ok() {
        // Events still in the ring buffer belong to the run being reported.
        written = handle_pending!();
    }
    if written.is_ok() {
        written = gadget.report(&mut session, report!());
    }
    drop(session);
    frame.finish(written, "writing the result")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(id: usize, mntns: u64) -> Arc<shared::ContainerRecord> {
        let mut r = shared::ContainerRecord::default();
        r.runtime.container_id = id.to_string();
        r.mntns = mntns;
        Arc::new(r)
    }

    #[test]
    fn stopped_containers_are_kept_up_to_a_bound_and_a_reused_number_is_the_latest() {
        let mut seen = Seen::default();
        let first = container(0, 7);
        seen.change(&Change::Added(first.clone()));
        seen.change(&Change::Removed(first.clone()));
        // The number 7 taken again by a later container, still running.
        let again = container(1, 7);
        seen.change(&Change::Added(again.clone()));
        for i in 0..MAX_GONE + 10 {
            let c = container(i + 2, 1000 + i as u64);
            seen.change(&Change::Added(c.clone()));
            seen.change(&Change::Removed(c));
        }
        assert_eq!(seen.gone.len(), MAX_GONE);
        assert_eq!(seen.by_mntns.len(), MAX_GONE + 1, "the bound, and the one running");
        assert!(Arc::ptr_eq(&seen.by_mntns[&7], &again), "the old 7's eviction took the new one");
        assert!(!seen.by_mntns.contains_key(&1000), "the oldest stopped one is forgotten");
        assert!(seen.by_mntns.contains_key(&(1000 + MAX_GONE as u64 + 9)));
    }

    /// The kernel gave the number of the container a profile measured to
    /// a container the run does not select: the result keeps its name.
    #[test]
    fn a_reused_number_keeps_the_name_of_the_selected_container() {
        let collection = Collection::new();
        let (seen, _sub) = SeenContainers::follow(&collection, ContainerSelector::named("measured"));
        let record = |id: &str, name: &str| {
            let mut r = shared::ContainerRecord::default();
            r.runtime.container_id = id.into();
            r.runtime.container_name = name.into();
            r.mntns = 7;
            r
        };
        collection.add(record("a", "measured"), crate::collection::Source::Hook);
        collection.remove("a");
        collection.add(record("b", "other"), crate::collection::Source::Hook);
        assert_eq!(seen.get(7).map(|r| r.runtime.container_name.clone()).as_deref(), Some("measured"));
    }

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

    #[test]
    fn buckets_group_into_histograms_and_unselected_namespaces_drop_out() {
        let b = |whose, group: &str, index, count| Bucket { whose, group: group.into(), index, count };
        let buckets = vec![
            b(Whose::Selected, "10.0.0.1", 1, 2),
            b(Whose::Netns(7), "10.0.0.1", 1, 3),
            b(Whose::Netns(8), "10.0.0.1", 1, 100),
            b(Whose::Selected, "10.0.0.2", 2, 1),
        ];
        let h = histograms(("rtt", "us"), GroupLabel::Address, buckets, |netns| netns == 7);
        assert_eq!(h.len(), 2);
        assert_eq!((h[0].address.as_str(), h[0].total()), ("10.0.0.1", 5));
        assert_eq!((h[1].address.as_str(), h[1].total()), ("10.0.0.2", 1));
        assert_eq!(histograms(("rtt", "us"), GroupLabel::Address, Vec::new(), |_| true)[0].total(), 0);
    }
}
