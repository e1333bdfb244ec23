//! `--metrics-address ADDR`: a Prometheus endpoint (`GET /metrics`, text
//! format 0.0.4) with what the running gadgets counted per container, and
//! ig's own health (events delivered and lost per gadget, containers known).
//!
//! A gadget run counts into a plain map of its own, keyed by mount
//! namespace (no lock, no label strings per event), and publishes it here
//! on its one-second tick; labels are the container's as first seen. In
//! `ig daemon` every gadget run (a client's or a headless instance) counts
//! into the daemon's one endpoint.
//!
//! Cardinality stays bounded: a container's series are dropped once it has
//! been gone from the collection for longer than the expiry.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::collection::Collection;

mod namespace_owners;
use namespace_owners::NamespaceOwners;

/// What a gadget counts per container, one metric each (DNS responses one
/// per rcode too).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Count {
    Execs,
    FailedExecs,
    FileOpens,
    FailedFileOpens,
    Signals,
    OomKills,
    TcpConnects,
    FailedTcpConnects,
    TcpAccepts,
    TcpSentBytes,
    TcpReceivedBytes,
    DnsQueries,
    DnsResponses { rcode: u8 },
    CapabilityDenials,
}

impl Count {
    /// One of each family, in the order they are served.
    const FAMILIES: [Count; 14] = [
        Count::Execs,
        Count::FailedExecs,
        Count::FileOpens,
        Count::FailedFileOpens,
        Count::Signals,
        Count::OomKills,
        Count::TcpConnects,
        Count::FailedTcpConnects,
        Count::TcpAccepts,
        Count::TcpSentBytes,
        Count::TcpReceivedBytes,
        Count::DnsQueries,
        Count::DnsResponses { rcode: 0 },
        Count::CapabilityDenials,
    ];

    fn name(self) -> &'static str {
        match self {
            Count::Execs => "ig_container_execs_total",
            Count::FailedExecs => "ig_container_failed_execs_total",
            Count::FileOpens => "ig_container_file_opens_total",
            Count::FailedFileOpens => "ig_container_failed_file_opens_total",
            Count::Signals => "ig_container_signals_total",
            Count::OomKills => "ig_container_oom_kills_total",
            Count::TcpConnects => "ig_container_tcp_connects_total",
            Count::FailedTcpConnects => "ig_container_failed_tcp_connects_total",
            Count::TcpSentBytes => "ig_container_tcp_sent_bytes_total",
            Count::TcpReceivedBytes => "ig_container_tcp_received_bytes_total",
            Count::TcpAccepts => "ig_container_tcp_accepts_total",
            Count::DnsQueries => "ig_container_dns_queries_total",
            Count::DnsResponses { .. } => "ig_container_dns_responses_total",
            Count::CapabilityDenials => "ig_container_capability_denials_total",
        }
    }

    fn help(self) -> &'static str {
        match self {
            Count::Execs => "Programs executed (execve calls, failed ones included).",
            Count::FailedExecs => "execve calls that failed.",
            Count::FileOpens => "Files opened (open calls, failed ones included).",
            Count::FailedFileOpens => "open calls that failed.",
            Count::Signals => "Signals sent.",
            Count::OomKills => "Processes killed by the OOM killer.",
            Count::TcpConnects => "TCP connections made (connect), failed ones included.",
            Count::FailedTcpConnects => "TCP connects that failed (refused, timed out, reset).",
            Count::TcpSentBytes => "Bytes sent on TCP sockets.",
            Count::TcpReceivedBytes => "Bytes received on TCP sockets.",
            Count::TcpAccepts => "TCP connections accepted.",
            Count::DnsQueries => "DNS queries sent.",
            Count::DnsResponses { .. } => "DNS responses received, by rcode.",
            Count::CapabilityDenials => "Capability checks that were denied.",
        }
    }

    /// A label of its own, after the container's.
    fn extra_label(self) -> Option<(&'static str, String)> {
        match self {
            Count::DnsResponses { rcode } => {
                Some(("rcode", crate::gadgets::trace_dns::message::rcode_name(rcode)))
            }
            _ => None,
        }
    }
}

/// What a gadget hands the metrics for one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sample {
    Count(Count),
    /// A DNS response this many nanoseconds after its query.
    DnsLatency(u64),
}

impl From<Count> for Sample {
    fn from(c: Count) -> Self {
        Sample::Count(c)
    }
}

/// `ig_container_dns_latency_seconds` buckets (upper bounds, seconds).
const DNS_LATENCY_BUCKETS: [f64; 12] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// A Prometheus histogram: cumulative bucket counts, count and sum.
#[derive(Clone, Debug, Default, PartialEq)]
struct Histogram {
    buckets: [u64; DNS_LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (n, le) in self.buckets.iter_mut().zip(DNS_LATENCY_BUCKETS) {
            if secs <= le {
                *n += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }

    fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
    }
}

/// The labels of one container (all empty for the host).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct ContainerLabels {
    namespace: String,
    pod: String,
    container: String,
    runtime: String,
}

impl ContainerLabels {
    /// namespace, pod, container and runtime, in that order.
    fn pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("namespace", self.namespace.clone()),
            ("pod", self.pod.clone()),
            ("container", self.container.clone()),
            ("runtime", self.runtime.clone()),
        ]
    }

    fn of(container: Option<&shared::ContainerRecord>) -> Self {
        let Some(c) = container else { return Self::default() };
        Self {
            namespace: c.k8s.namespace.clone(),
            pod: c.k8s.pod_name.clone(),
            container: c.runtime.container_name.clone(),
            runtime: c.runtime.runtime_name.clone(),
        }
    }
}

/// Totals by container labels and metric.
type Totals = BTreeMap<(ContainerLabels, Count), u64>;

/// One run's counts, kept by the run itself between publications.
/// A hasher for keys that are mount namespace ids (and small enums): the
/// counting runs once per event, where SipHash would be most of its cost.
#[derive(Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing: spreads inode-like ids over the table.
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_isize(&mut self, n: isize) {
        self.write_u64(n as u64);
    }
}

type IdMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<IdHasher>>;

/// Whose an event is: its mount namespace and the record of its container
/// (by identity: a namespace id the kernel reuses for another container
/// is another key), 0 for none.
type Whose = (u64, usize);

#[derive(Default)]
pub struct RunCounts {
    counts: IdMap<(Whose, Count), u64>,
    latencies: IdMap<Whose, Histogram>,
    /// The labels of each key (a record never changes: neither do they).
    labels: IdMap<Whose, ContainerLabels>,
    /// The key whose labels are there already: events come in runs.
    labelled: Option<Whose>,
    pub delivered: u64,
}

impl RunCounts {
    pub fn add(
        &mut self,
        mntns: u64,
        container: Option<&shared::ContainerRecord>,
        sample: impl Into<Sample>,
    ) {
        let whose = (mntns, container.map_or(0, |c| c as *const shared::ContainerRecord as usize));
        match sample.into() {
            Sample::Count(count) => *self.counts.entry((whose, count)).or_insert(0) += 1,
            Sample::DnsLatency(ns) => self.latencies.entry(whose).or_default().observe(ns as f64 / 1e9),
        }
        if self.labelled != Some(whose) {
            self.labels.entry(whose).or_insert_with(|| ContainerLabels::of(container));
            self.labelled = Some(whose);
        }
    }
}

/// How long a gone container's series stay, unless told otherwise.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(300);

/// Everything the endpoint serves.
pub struct Metrics {
    inner: Mutex<Published>,
    /// A container gone for longer than this loses its series.
    expiry: Duration,
    /// `ig daemon`'s in-kernel counters, when loaded.
    kernel: Mutex<Option<InKernel>>,
    /// What those counters count (set once, when they load): gadget runs
    /// leave these to them.
    kernel_counts: std::sync::OnceLock<Vec<Count>>,
    /// The daemon's own `trace dns` run counts DNS (see daemon/dns_counter.rs).
    daemon_counts_dns: std::sync::atomic::AtomicBool,
}

/// The in-kernel counters and the labels of every container whose mount
/// namespace they may hold (learnt as each is added, kept until its series
/// expire: a 10 ms container is gone by the next scrape).
struct InKernel {
    counters: Arc<Mutex<crate::gadgets::metrics_counters::KernelCounters>>,
    owners: Arc<Mutex<NamespaceOwners>>,
    _subscription: crate::collection::Subscription,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(DEFAULT_EXPIRY)
    }
}

#[derive(Default)]
struct Published {
    /// (labels, count) → total, summed over runs and containers with the same labels.
    containers: Totals,
    /// labels → DNS latency histogram.
    dns_latency: BTreeMap<ContainerLabels, Histogram>,
    /// Containers with series but no longer in the collection: since when.
    gone_since: HashMap<ContainerLabels, Instant>,
    /// gadget → (delivered, lost).
    gadgets: BTreeMap<String, (u64, u64)>,
    /// gadget → runs going on now.
    running: BTreeMap<String, u64>,
}

/// A gadget run going on, counted in `ig_gadget_runs` until dropped.
pub struct RunningGadget {
    metrics: Arc<Metrics>,
    gadget: String,
}

impl Drop for RunningGadget {
    fn drop(&mut self) {
        let mut p = self.metrics.lock();
        if let Some(n) = p.running.get_mut(&self.gadget) {
            *n = n.saturating_sub(1);
        }
    }
}

impl Metrics {
    pub fn new(expiry: Duration) -> Self {
        Self {
            inner: Mutex::default(),
            expiry,
            kernel: Mutex::new(None),
            kernel_counts: Default::default(),
            daemon_counts_dns: Default::default(),
        }
    }

    /// Counts in the kernel from now on, for every process of the node,
    /// what this kernel lets it count (gadget runs no longer count those);
    /// returns what that is.
    pub fn count_in_kernel(
        &self,
        collection: &Arc<Collection>,
    ) -> Result<crate::gadgets::metrics_counters::KernelCounting, crate::session::SessionError> {
        let loaded = crate::gadgets::metrics_counters::KernelCounters::load()?;
        let counting = loaded.counting();
        let counters = Arc::new(Mutex::new(loaded));
        let owners: Arc<Mutex<NamespaceOwners>> = Arc::default();
        let (kernel, learnt) = (counters.clone(), owners.clone());
        // The collection's first calls are its replay of the containers
        // already there: they ran before the counters loaded.
        let replaying = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let replay = replaying.clone();
        let subscription = collection.subscribe(move |change| {
            let mut owners = locked(&learnt);
            let (mntns, previous) = match change {
                crate::collection::Change::Added(r) => {
                    let running_before = replay.load(std::sync::atomic::Ordering::Acquire);
                    (r.mntns, owners.arrived(r.mntns, ContainerLabels::of(Some(r)), running_before))
                }
                crate::collection::Change::Removed(r) => {
                    (r.mntns, owners.left(r.mntns, &ContainerLabels::of(Some(r))))
                }
            };
            let Some(previous) = previous else { return };
            match locked(&kernel).take(mntns) {
                Ok(counted) => owners.retire(previous, counted),
                Err(e) => tracing::warn!("moving the in-kernel counters of mount namespace {mntns}: {e}"),
            }
        });
        replaying.store(false, std::sync::atomic::Ordering::Release);
        *locked(&self.kernel) = Some(InKernel { counters, owners, _subscription: subscription });
        let _ = self.kernel_counts.set(counting.counted.clone());
        Ok(counting)
    }

    /// From now on (`true`) DNS is counted by the daemon's own run, which
    /// every other run leaves it to; `false` when that run ended.
    pub fn set_daemon_counts_dns(&self, on: bool) {
        self.daemon_counts_dns.store(on, std::sync::atomic::Ordering::Release);
    }

    /// Whether the daemon counts `count` itself, in the kernel or in its
    /// own counting run (so a gadget run must not).
    pub fn counted_by_daemon(&self, count: Sample) -> bool {
        let dns = || self.daemon_counts_dns.load(std::sync::atomic::Ordering::Acquire);
        match count {
            Sample::Count(Count::DnsQueries | Count::DnsResponses { .. }) | Sample::DnsLatency(_) => dns(),
            Sample::Count(c) => self.kernel_counts.get().is_some_and(|counted| counted.contains(&c)),
        }
    }

    /// The kernel's totals by labels (the host's for namespaces no container
    /// had), and what it could not count.
    fn kernel_rows(&self) -> Option<(Totals, u64)> {
        let guard = locked(&self.kernel);
        let k = guard.as_ref()?;
        // The owners first, as the collection's calls take them: a
        // namespace's counts are never both retired and read in one scrape.
        let owners = locked(&k.owners);
        let mut counters = locked(&k.counters);
        let entries = counters.read().unwrap_or_else(|e| {
            tracing::warn!("reading the in-kernel counters: {e}");
            Vec::new()
        });
        let rows = owners.rows(entries);
        let lost = counters.lost();
        Some((rows, lost))
    }

    /// Drops the kernel's counters of containers whose series expired.
    fn kernel_forget(&self, expired: &[ContainerLabels]) {
        let guard = locked(&self.kernel);
        let Some(k) = guard.as_ref() else { return };
        let mut owners = locked(&k.owners);
        let gone = owners.expire(expired);
        if let Err(e) = locked(&k.counters).forget(&gone) {
            tracing::warn!("clearing the in-kernel counters of gone containers: {e}");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Published> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a run of `gadget` as going on until the result is dropped.
    pub fn running(self: &Arc<Self>, gadget: &str) -> RunningGadget {
        let mut p = self.lock();
        *p.running.entry(gadget.to_string()).or_insert(0) += 1;
        p.gadgets.entry(gadget.to_string()).or_insert((0, 0));
        RunningGadget { metrics: self.clone(), gadget: gadget.to_string() }
    }

    /// Adds what `run` counted since its last publication, and its totals.
    pub fn publish(&self, gadget: &str, run: &mut RunCounts, lost: u64) {
        let mut p = self.lock();
        for ((whose, count), n) in run.counts.drain() {
            let labels = run.labels.get(&whose).cloned().unwrap_or_default();
            *p.containers.entry((labels, count)).or_insert(0) += n;
        }
        for (whose, h) in run.latencies.drain() {
            let labels = run.labels.get(&whose).cloned().unwrap_or_default();
            p.dns_latency.entry(labels).or_default().merge(&h);
        }
        // Records go: keep only the labels of keys that may count again soon.
        if run.labels.len() > 4096 {
            run.labels.clear();
            run.labelled = None;
        }
        let g = p.gadgets.entry(gadget.to_string()).or_insert((0, 0));
        g.0 += std::mem::take(&mut run.delivered);
        g.1 += lost;
    }

    /// Forgets the series of containers gone for longer than the expiry;
    /// starts the clock for those that just went.
    fn expire(
        &self,
        p: &mut Published,
        collection: &Collection,
        now: Instant,
        kernel: &Totals,
    ) -> Vec<ContainerLabels> {
        let live: std::collections::HashSet<ContainerLabels> =
            collection.snapshot().iter().map(|r| ContainerLabels::of(Some(r))).collect();
        let with_series: std::collections::HashSet<ContainerLabels> = p
            .containers
            .keys()
            .chain(kernel.keys())
            .map(|(l, _)| l.clone())
            .chain(p.dns_latency.keys().cloned())
            .filter(|l| *l != ContainerLabels::default())
            .collect();
        p.gone_since.retain(|l, _| with_series.contains(l) && !live.contains(l));
        let mut expired = Vec::new();
        for labels in with_series.into_iter().filter(|l| !live.contains(l)) {
            let since = *p.gone_since.entry(labels.clone()).or_insert(now);
            if now.duration_since(since) >= self.expiry {
                expired.push(labels);
            }
        }
        for labels in &expired {
            p.containers.retain(|(l, _), _| l != labels);
            p.dns_latency.remove(labels);
            p.gone_since.remove(labels);
        }
        expired
    }

    /// The Prometheus text format.
    pub fn render(&self, collection: &Collection) -> String {
        self.render_at(collection, Instant::now())
    }

    fn render_at(&self, collection: &Collection, now: Instant) -> String {
        let mut out = String::new();
        for f in self.families_at(collection, now) {
            let (name, kind) = (f.name, f.kind.as_str());
            let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} {kind}", f.help);
            for point in &f.points {
                let labels: Vec<String> =
                    point.labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
                let labels = labels.join(",");
                let braced = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
                match &point.value {
                    Value::Number(n) => {
                        let _ = writeln!(out, "{name}{braced} {n}");
                    }
                    Value::Histogram { bounds, cumulative, count, sum } => {
                        let sep = if labels.is_empty() { "" } else { "," };
                        for (le, n) in bounds.iter().zip(cumulative) {
                            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {n}");
                        }
                        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
                        let _ = writeln!(out, "{name}_sum{braced} {sum}");
                        let _ = writeln!(out, "{name}_count{braced} {count}");
                    }
                }
            }
        }
        out
    }

    /// Every metric family with its points now (gone containers expired):
    /// what the Prometheus text and the OTLP export are both made from.
    pub fn families(&self, collection: &Collection) -> Vec<Family> {
        self.families_at(collection, Instant::now())
    }

    fn families_at(&self, collection: &Collection, now: Instant) -> Vec<Family> {
        let (mut kernel, kernel_lost) = self.kernel_rows().unzip();
        let mut p = self.lock();
        let expired = self.expire(&mut p, collection, now, kernel.as_ref().unwrap_or(&BTreeMap::new()));
        if !expired.is_empty() && kernel.is_some() {
            self.kernel_forget(&expired);
            if let Some(rows) = kernel.as_mut() {
                rows.retain(|(l, _), _| !expired.contains(l));
            }
        }
        let mut containers = p.containers.clone();
        for (key, n) in kernel.into_iter().flatten() {
            *containers.entry(key).or_insert(0) += n;
        }
        let mut out = Vec::new();
        for family in Count::FAMILIES {
            let name = family.name();
            let points: Vec<Point> = containers
                .iter()
                .filter(|((_, c), _)| c.name() == name)
                .map(|((l, c), n)| {
                    let mut labels = l.pairs();
                    if let Some(extra) = c.extra_label() {
                        labels.push(extra);
                    }
                    Point { labels, value: Value::Number(*n) }
                })
                .collect();
            if !points.is_empty() {
                out.push(Family { name, help: family.help(), kind: FamilyKind::Counter, points });
            }
        }
        if !p.dns_latency.is_empty() {
            let points = p
                .dns_latency
                .iter()
                .map(|(l, h)| Point {
                    labels: l.pairs(),
                    value: Value::Histogram {
                        bounds: &DNS_LATENCY_BUCKETS,
                        cumulative: h.buckets.to_vec(),
                        count: h.count,
                        sum: h.sum,
                    },
                })
                .collect();
            out.push(Family {
                name: "ig_container_dns_latency_seconds",
                help: "Time from a DNS query to its response.",
                kind: FamilyKind::Histogram,
                points,
            });
        }
        let per_gadget = |pick: fn(&(u64, u64)) -> u64| -> Vec<Point> {
            p.gadgets
                .iter()
                .map(|(g, v)| Point { labels: vec![("gadget", g.clone())], value: Value::Number(pick(v)) })
                .collect()
        };
        out.push(Family {
            name: "ig_gadget_events_delivered_total",
            help: "Events the gadget received from the kernel.",
            kind: FamilyKind::Counter,
            points: per_gadget(|v| v.0),
        });
        out.push(Family {
            name: "ig_gadget_events_lost_total",
            help: "Events lost: the ring buffer was full.",
            kind: FamilyKind::Counter,
            points: per_gadget(|v| v.1),
        });
        out.push(Family {
            name: "ig_gadget_runs",
            help: "Gadget runs going on now.",
            kind: FamilyKind::Gauge,
            points: p
                .running
                .iter()
                .map(|(g, n)| Point { labels: vec![("gadget", g.clone())], value: Value::Number(*n) })
                .collect(),
        });
        drop(p);
        let sources = collection.source_counts();
        let per_source = |pick: fn(&crate::collection::SourceCounts) -> u64| -> Vec<Point> {
            sources
                .iter()
                .map(|(s, c)| Point {
                    labels: vec![("source", s.as_str().to_string())],
                    value: Value::Number(pick(c)),
                })
                .collect()
        };
        out.push(Family {
            name: "ig_containers",
            help: "Containers ig knows now, by the source that told it first.",
            kind: FamilyKind::Gauge,
            points: per_source(|c| c.known as u64),
        });
        out.push(Family {
            name: "ig_container_records_total",
            help: "Container records received, by source.",
            kind: FamilyKind::Counter,
            points: per_source(|c| c.records),
        });
        if let Some(lost) = kernel_lost {
            out.push(Family {
                name: "ig_kernel_counts_lost_total",
                help: "Counts the in-kernel counters could not keep: their map was full.",
                kind: FamilyKind::Counter,
                points: vec![Point { labels: Vec::new(), value: Value::Number(lost) }],
            });
        }
        let (programs, maps) = crate::session::loaded_now();
        for (name, help, n) in [
            ("ig_ebpf_programs", "eBPF programs the running gadgets have attached.", programs),
            ("ig_ebpf_maps", "eBPF maps the running gadgets hold.", maps),
        ] {
            out.push(Family {
                name,
                help,
                kind: FamilyKind::Gauge,
                points: vec![Point { labels: Vec::new(), value: Value::Number(n) }],
            });
        }
        out
    }
}

/// One metric family: its points, each with its labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: FamilyKind,
    pub points: Vec<Point>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FamilyKind {
    Counter,
    Gauge,
    Histogram,
}

impl FamilyKind {
    fn as_str(self) -> &'static str {
        match self {
            FamilyKind::Counter => "counter",
            FamilyKind::Gauge => "gauge",
            FamilyKind::Histogram => "histogram",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub labels: Vec<(&'static str, String)>,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Number(u64),
    /// Cumulative counts at each upper bound (+Inf is `count`).
    Histogram {
        bounds: &'static [f64],
        cumulative: Vec<u64>,
        count: u64,
        sum: f64,
    },
}

/// A label value in the text format: backslash, quote and newline escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Serves `GET /metrics` on `addr` until the process ends. Binds now, so a
/// bad address is an error before the gadget starts.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    collection: Arc<Collection>,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let (metrics, collection) = (metrics.clone(), collection.clone());
            tokio::spawn(async move {
                if let Err(e) = answer(stream, &metrics, &collection).await {
                    tracing::debug!("metrics request: {e}");
                }
            });
        }
    });
    Ok(bound)
}

/// One HTTP/1.x request, answered and closed (scrapers reconnect cheaply).
async fn answer(
    mut stream: tokio::net::TcpStream,
    metrics: &Metrics,
    collection: &Collection,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(())
    };
    // A client that sends nothing must not hold a task for ever.
    tokio::time::timeout(std::time::Duration::from_secs(10), read)
        .await
        .map_err(|_| std::io::ErrorKind::TimedOut)??;
    let line = String::from_utf8_lossy(head.split(|&b| b == b'\r').next().unwrap_or_default()).to_string();
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, body, kind) = match (method, path.split('?').next().unwrap_or("")) {
        ("GET", "/metrics") => {
            ("200 OK", metrics.render(collection), "text/plain; version=0.0.4; charset=utf-8")
        }
        ("GET", _) => ("404 Not Found", "only /metrics here\n".to_string(), "text/plain"),
        _ => ("405 Method Not Allowed", "GET /metrics\n".to_string(), "text/plain"),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_per_container_with_help_and_type() {
        let m = Metrics::default();
        let mut run = RunCounts::default();
        let mut rec = shared::ContainerRecord::default();
        rec.runtime.container_name = "web\"1".into();
        rec.runtime.runtime_name = "podman".into();
        for _ in 0..3 {
            run.add(7, Some(&rec), Count::Execs);
        }
        run.add(7, Some(&rec), Count::FailedExecs);
        run.add(1, None, Count::Execs);
        run.delivered = 5;
        m.publish("trace exec", &mut run, 2);
        run.add(7, Some(&rec), Count::Execs);
        m.publish("trace exec", &mut run, 0);
        let text = m.render(&Collection::default());
        assert!(text.contains("# TYPE ig_container_execs_total counter"), "{text}");
        assert!(
            text.contains(
                "ig_container_execs_total{namespace=\"\",pod=\"\",container=\"web\\\"1\",runtime=\"podman\"} 4"
            ),
            "{text}"
        );
        assert!(
            text.contains("ig_container_execs_total{namespace=\"\",pod=\"\",container=\"\",runtime=\"\"} 1")
        );
        assert!(text.contains("ig_container_failed_execs_total{namespace=\"\",pod=\"\",container=\"web\\\"1\",runtime=\"podman\"} 1"));
        assert!(text.contains("ig_gadget_events_delivered_total{gadget=\"trace exec\"} 5"));
        assert!(text.contains("ig_gadget_events_lost_total{gadget=\"trace exec\"} 2"));
        assert!(text.contains("ig_containers{source=\"hook\"} 0"), "{text}");
        assert!(text.contains("ig_container_records_total{source=\"nri\"} 0"), "{text}");
        assert!(!text.contains("file_opens"), "no empty families");
    }

    fn container(id: &str, name: &str, mntns: u64) -> shared::ContainerRecord {
        let mut rec = shared::ContainerRecord::default();
        rec.runtime.container_id = id.into();
        rec.runtime.container_name = name.into();
        rec.runtime.runtime_name = "runc".into();
        rec.mntns = mntns;
        rec
    }

    #[test]
    fn a_gone_containers_series_go_after_the_expiry_the_hosts_stay() {
        let m = Metrics::new(Duration::from_secs(60));
        let c = Collection::new();
        let (a, b) = (container("a", "gone-soon", 1), container("b", "stays", 2));
        c.add(a.clone(), crate::collection::Source::Hook);
        c.add(b.clone(), crate::collection::Source::Nri);
        let mut run = RunCounts::default();
        run.add(1, Some(&a), Count::Execs);
        run.add(2, Some(&b), Count::Execs);
        run.add(9, None, Count::Execs);
        m.publish("trace exec", &mut run, 0);
        let t0 = Instant::now();
        assert!(m.render_at(&c, t0).contains("container=\"gone-soon\""));
        c.remove("a");
        let shown = |t: Instant| m.render_at(&c, t);
        assert!(shown(t0 + Duration::from_secs(1)).contains("container=\"gone-soon\""), "kept while recent");
        let later = shown(t0 + Duration::from_secs(62));
        assert!(!later.contains("gone-soon"), "{later}");
        assert!(later.contains("container=\"stays\""), "{later}");
        assert!(
            later.contains("ig_container_execs_total{namespace=\"\",pod=\"\",container=\"\",runtime=\"\"} 1")
        );
        assert!(later.contains("ig_containers{source=\"nri\"} 1"), "{later}");
        assert!(later.contains("ig_container_records_total{source=\"hook\"} 1"), "{later}");
    }

    #[test]
    fn a_container_back_before_the_expiry_keeps_its_series() {
        let m = Metrics::new(Duration::from_secs(60));
        let c = Collection::new();
        let a = container("a", "web", 1);
        c.add(a.clone(), crate::collection::Source::Hook);
        let mut run = RunCounts::default();
        run.add(1, Some(&a), Count::Execs);
        m.publish("trace exec", &mut run, 0);
        let t0 = Instant::now();
        c.remove("a");
        m.render_at(&c, t0);
        // Restarted under the same name (a new id): the same series.
        c.add(container("a2", "web", 3), crate::collection::Source::Hook);
        assert!(
            m.render_at(&c, t0 + Duration::from_secs(120)).contains("container=\"web\",runtime=\"runc\"} 1")
        );
    }

    #[test]
    fn dns_responses_by_rcode_and_a_latency_histogram() {
        let m = Metrics::default();
        let mut run = RunCounts::default();
        let rec = container("a", "dns", 1);
        run.add(1, Some(&rec), Count::DnsQueries);
        run.add(1, Some(&rec), Count::DnsResponses { rcode: 0 });
        run.add(1, Some(&rec), Count::DnsResponses { rcode: 3 });
        run.add(1, Some(&rec), Count::DnsResponses { rcode: 3 });
        run.add(1, Some(&rec), Sample::DnsLatency(700_000)); // 0.7 ms
        run.add(1, Some(&rec), Sample::DnsLatency(30_000_000)); // 30 ms
        m.publish("trace dns", &mut run, 0);
        let c = Collection::new();
        c.add(rec, crate::collection::Source::Hook);
        let text = m.render(&c);
        let l = "namespace=\"\",pod=\"\",container=\"dns\",runtime=\"runc\"";
        for line in [
            format!("ig_container_dns_queries_total{{{l}}} 1"),
            format!("ig_container_dns_responses_total{{{l},rcode=\"NoError\"}} 1"),
            format!("ig_container_dns_responses_total{{{l},rcode=\"NXDomain\"}} 2"),
            "# TYPE ig_container_dns_latency_seconds histogram".to_string(),
            format!("ig_container_dns_latency_seconds_bucket{{{l},le=\"0.0005\"}} 0"),
            format!("ig_container_dns_latency_seconds_bucket{{{l},le=\"0.001\"}} 1"),
            format!("ig_container_dns_latency_seconds_bucket{{{l},le=\"0.025\"}} 1"),
            format!("ig_container_dns_latency_seconds_bucket{{{l},le=\"0.05\"}} 2"),
            format!("ig_container_dns_latency_seconds_bucket{{{l},le=\"+Inf\"}} 2"),
            format!("ig_container_dns_latency_seconds_count{{{l}}} 2"),
        ] {
            assert!(text.lines().any(|t| t == line), "{line} not in:\n{text}");
        }
        let sum = format!("ig_container_dns_latency_seconds_sum{{{l}}} ");
        let sum: f64 = text.lines().find_map(|t| t.strip_prefix(&sum)?.parse().ok()).expect("a sum");
        assert!((sum - 0.0307).abs() < 1e-9, "{sum}");
        assert_eq!(text.matches("# TYPE ig_container_dns_responses_total counter").count(), 1, "{text}");
    }

    #[test]
    fn a_namespace_id_used_again_counts_for_its_new_container() {
        let m = Metrics::default();
        let c = Collection::new();
        let (old, new) = (container("a", "old", 5), container("b", "new", 5));
        c.add(new.clone(), crate::collection::Source::Hook);
        let mut run = RunCounts::default();
        run.add(5, Some(&old), Count::Execs);
        run.add(5, Some(&new), Count::Execs);
        run.add(5, Some(&new), Count::Execs);
        m.publish("trace exec", &mut run, 0);
        let text = m.render(&c);
        assert!(text.contains("container=\"old\",runtime=\"runc\"} 1"), "{text}");
        assert!(text.contains("container=\"new\",runtime=\"runc\"} 2"), "{text}");
    }

    #[test]
    fn runs_going_on_are_a_gauge() {
        let m = Arc::new(Metrics::default());
        let c = Collection::new();
        let r1 = m.running("trace exec");
        let _r2 = m.running("trace exec");
        assert!(m.render(&c).contains("ig_gadget_runs{gadget=\"trace exec\"} 2"));
        drop(r1);
        let text = m.render(&c);
        assert!(text.contains("ig_gadget_runs{gadget=\"trace exec\"} 1"), "{text}");
        assert!(text.contains("ig_gadget_events_lost_total{gadget=\"trace exec\"} 0"), "{text}");
    }
}
