//! The container collection: every container this tracer knows, indexed by
//! id, mount namespace and network namespace. Sources (ig-hook, ig-nri, the
//! spool) add and remove containers; subscribers (a gadget's filter map,
//! `list-containers -w`) hear of each change synchronously, so a source's
//! acknowledgement means the filter maps are already updated.
//!
//! Removed containers stay findable by namespace for a short grace period:
//! events a short-lived container made just before exiting are still in the
//! ring buffer when its removal arrives.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use shared::ContainerRecord;

/// How long a removed container still enriches late events.
pub const REMOVED_GRACE: Duration = Duration::from_secs(5);

/// Where a container record came from: a metric label, and the way to
/// tell which source saw a container first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// ig-hook, an OCI hook of the runtime (podman, CRI-O, runc bundles).
    Hook,
    /// containerd's NRI: ig-nri, or the daemon's own plugin.
    Nri,
    /// The fanotify watcher on the runtime binaries (docker, `ctr run`).
    Fanotify,
    /// The records earlier hooks and plugins left in the spool.
    Spool,
    /// The runtime APIs, asked once at start-up.
    RuntimeApi,
}

impl Source {
    pub const ALL: [Source; 5] =
        [Source::Hook, Source::Nri, Source::Fanotify, Source::Spool, Source::RuntimeApi];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Hook => "hook",
            Source::Nri => "nri",
            Source::Fanotify => "fanotify",
            Source::Spool => "spool",
            Source::RuntimeApi => "runtime-api",
        }
    }

    /// The name a source gives itself on the tracers' socket.
    pub fn from_wire(name: Option<&str>) -> Self {
        match name {
            Some("nri") => Source::Nri,
            _ => Source::Hook,
        }
    }
}

/// What one source gave: containers known now (that it told first), and
/// records received in all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceCounts {
    pub known: usize,
    pub records: u64,
}

#[derive(Clone, Debug)]
pub enum Change {
    Added(Arc<ContainerRecord>),
    Removed(Arc<ContainerRecord>),
}

type Subscriber = Box<dyn Fn(&Change) + Send>;

/// A removed container, still naming its late events for a while.
struct Removed {
    at: Instant,
    /// CLOCK_BOOTTIME at its removal, the clock BPF stamps events with.
    at_boot_ns: u64,
    record: Arc<ContainerRecord>,
    /// Its insertion order (see `Inner::added_at`).
    added: u64,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<String, Arc<ContainerRecord>>,
    by_mntns: HashMap<u64, Arc<ContainerRecord>>,
    by_netns: HashMap<u64, Vec<Arc<ContainerRecord>>>,
    /// Removed containers by mount namespace: the kernel reuses a
    /// namespace's number, and the container that last had it is the one
    /// its late events belong to.
    removed: HashMap<u64, Removed>,
    /// Insertion order of each known container (by id), and the next one.
    added_at: HashMap<String, u64>,
    next_added: u64,
    /// Which source each known container came from.
    source_of: HashMap<String, Source>,
    /// Records received per source, accepted or not.
    records: HashMap<Source, u64>,
    subscribers: Vec<(u64, Subscriber)>,
    next_subscriber: u64,
}

#[derive(Default)]
pub struct Collection {
    inner: Mutex<Inner>,
    /// Initial loads under way (the spool, the runtime APIs): subscribers
    /// wait for them, so a gadget's filter starts with every container
    /// that was already running, while its programs load meanwhile.
    initial_loads: Mutex<usize>,
    loaded: Condvar,
}

/// An initial load under way; the collection counts as loaded once every
/// such guard is dropped (on its thread's end, or its panic).
pub struct InitialLoad {
    collection: Arc<Collection>,
}

impl Drop for InitialLoad {
    fn drop(&mut self) {
        let mut n = self.collection.initial_loads.lock().unwrap_or_else(|p| p.into_inner());
        *n = n.saturating_sub(1);
        if *n == 0 {
            self.collection.loaded.notify_all();
        }
    }
}

/// Ends a subscription when dropped.
pub struct Subscription {
    collection: Arc<Collection>,
    id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.collection.lock().subscribers.retain(|(id, _)| *id != self.id);
    }
}

impl Collection {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Marks an initial load as under way until the guard is dropped.
    pub fn initial_load(self: &Arc<Self>) -> InitialLoad {
        *self.initial_loads.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        InitialLoad { collection: self.clone() }
    }

    /// Returns once no initial load is under way.
    pub fn wait_initial_load(&self) {
        let mut n = self.initial_loads.lock().unwrap_or_else(|p| p.into_inner());
        while *n > 0 {
            n = self.loaded.wait(n).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Adds or replaces a container; returns false when the same record was
    /// already there (a container learnt from two sources).
    pub fn add(&self, record: ContainerRecord, source: Source) -> bool {
        let mut inner = self.lock();
        *inner.records.entry(source).or_insert(0) += 1;
        if let Some(old) = inner.by_id.get(&record.runtime.container_id) {
            if **old == record {
                return false;
            }
            let old = old.clone();
            inner.unindex(&old);
        }
        inner.insert(record, source);
        true
    }

    /// Adds a container unless one with its id is already there: a fallback
    /// source must not replace what a richer one (a hook, NRI) said.
    pub fn add_if_absent(&self, record: ContainerRecord, source: Source) -> bool {
        let mut inner = self.lock();
        *inner.records.entry(source).or_insert(0) += 1;
        if inner.by_id.contains_key(&record.runtime.container_id) {
            return false;
        }
        inner.insert(record, source);
        true
    }

    /// Removes a container by id; returns it if it was there.
    pub fn remove(&self, container_id: &str) -> Option<Arc<ContainerRecord>> {
        let mut inner = self.lock();
        let record = inner.by_id.get(container_id).cloned()?;
        inner.unindex(&record);
        inner.source_of.remove(container_id);
        let added = inner.added_at.remove(container_id).unwrap_or(0);
        let now = Instant::now();
        inner.removed.retain(|_, r| now.duration_since(r.at) < REMOVED_GRACE);
        // Its removal may come after a later container got its mount
        // namespace number (the kernel reused it): the number stays that
        // container's, running or removed.
        let taken = inner.by_mntns.contains_key(&record.mntns)
            || inner.removed.get(&record.mntns).is_some_and(|r| r.added > added);
        if !taken {
            let gone =
                Removed { at: now, at_boot_ns: crate::event::boottime_ns(), record: record.clone(), added };
            inner.removed.insert(record.mntns, gone);
        }
        inner.notify(&Change::Removed(record.clone()));
        Some(record)
    }

    /// The container of a mount namespace, including one removed less than
    /// [`REMOVED_GRACE`] ago, for what has no time of its own.
    pub fn by_mntns(&self, mntns: u64) -> Option<Arc<ContainerRecord>> {
        self.by_mntns_at(mntns, 0)
    }

    /// The container of a mount namespace for an event stamped `event_boot_ns`
    /// (CLOCK_BOOTTIME): a removed container only for what happened before
    /// its removal. Its processes are gone by then, and the kernel gives the
    /// freed number to the next namespace made, a host process's maybe,
    /// whose events are not the container's.
    pub fn by_mntns_at(&self, mntns: u64, event_boot_ns: u64) -> Option<Arc<ContainerRecord>> {
        let inner = self.lock();
        if let Some(r) = inner.by_mntns.get(&mntns) {
            return Some(r.clone());
        }
        let removed = inner.removed.get(&mntns)?;
        (removed.at.elapsed() < REMOVED_GRACE && event_boot_ns < removed.at_boot_ns)
            .then(|| removed.record.clone())
    }

    /// The containers sharing a network namespace (a pod's).
    pub fn by_netns(&self, netns: u64) -> Vec<Arc<ContainerRecord>> {
        self.lock().by_netns.get(&netns).cloned().unwrap_or_default()
    }

    pub fn by_id(&self, container_id: &str) -> Option<Arc<ContainerRecord>> {
        self.lock().by_id.get(container_id).cloned()
    }

    /// Every live container, sorted by name then id.
    pub fn snapshot(&self) -> Vec<Arc<ContainerRecord>> {
        let mut all: Vec<_> = self.lock().by_id.values().cloned().collect();
        all.sort_by(|a, b| {
            (&a.runtime.container_name, &a.runtime.container_id)
                .cmp(&(&b.runtime.container_name, &b.runtime.container_id))
        });
        all
    }

    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Per source: containers known now and records received.
    pub fn source_counts(&self) -> Vec<(Source, SourceCounts)> {
        let inner = self.lock();
        Source::ALL
            .iter()
            .map(|&s| {
                let known = inner.source_of.values().filter(|&&v| v == s).count();
                (s, SourceCounts { known, records: inner.records.get(&s).copied().unwrap_or(0) })
            })
            .collect()
    }

    /// Calls `f` with `Added` for every container already there, then for
    /// every later change, until the returned subscription is dropped. `f`
    /// runs with the collection locked: it must not call back into it.
    /// Waits for the initial loads first (see [`Collection::initial_load`]).
    pub fn subscribe(self: &Arc<Self>, f: impl Fn(&Change) + Send + 'static) -> Subscription {
        self.wait_initial_load();
        let mut inner = self.lock();
        for r in inner.by_id.values() {
            f(&Change::Added(r.clone()));
        }
        let id = inner.next_subscriber;
        inner.next_subscriber += 1;
        inner.subscribers.push((id, Box::new(f)));
        Subscription { collection: self.clone(), id }
    }
}

impl Inner {
    fn insert(&mut self, record: ContainerRecord, source: Source) {
        // A record that replaces another keeps the source that told first.
        self.source_of.entry(record.runtime.container_id.clone()).or_insert(source);
        let record = Arc::new(record);
        self.removed.remove(&record.mntns);
        self.next_added += 1;
        self.added_at.insert(record.runtime.container_id.clone(), self.next_added);
        self.by_id.insert(record.runtime.container_id.clone(), record.clone());
        self.by_mntns.insert(record.mntns, record.clone());
        self.by_netns.entry(record.netns).or_default().push(record.clone());
        self.notify(&Change::Added(record));
    }

    fn unindex(&mut self, record: &Arc<ContainerRecord>) {
        self.by_id.remove(&record.runtime.container_id);
        if self.by_mntns.get(&record.mntns).is_some_and(|r| Arc::ptr_eq(r, record)) {
            self.by_mntns.remove(&record.mntns);
        }
        if let Some(list) = self.by_netns.get_mut(&record.netns) {
            list.retain(|r| !Arc::ptr_eq(r, record));
            if list.is_empty() {
                self.by_netns.remove(&record.netns);
            }
        }
    }

    fn notify(&self, change: &Change) {
        for (_, f) in &self.subscribers {
            f(change);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::channel;

    use super::*;

    fn record(id: &str, mntns: u64, netns: u64) -> ContainerRecord {
        let mut r = ContainerRecord::default();
        r.runtime.container_id = id.into();
        r.runtime.container_name = format!("name-{id}");
        r.mntns = mntns;
        r.netns = netns;
        r
    }

    /// A subscriber made while an initial load runs starts with all it
    /// loaded, never half of it.
    #[test]
    fn a_subscriber_waits_for_the_initial_load() {
        let c = Collection::new();
        let load = c.initial_load();
        let loader = {
            let c = c.clone();
            std::thread::spawn(move || {
                for i in 0..100 {
                    c.add(record(&format!("c{i}"), i + 1, 7), Source::Spool);
                    std::thread::yield_now();
                }
                drop(load);
            })
        };
        let (tx, rx) = channel();
        let _s = c.subscribe(move |change| {
            let _ = tx.send(matches!(change, Change::Added(_)));
        });
        let first: Vec<bool> = rx.try_iter().collect();
        assert_eq!(first.len(), 100, "every loaded container, at subscription");
        loader.join().unwrap();
    }

    #[test]
    fn indexes_by_id_mntns_and_netns() {
        let c = Collection::new();
        assert!(c.add(record("a", 1, 10), Source::Hook));
        assert!(c.add(record("b", 2, 10), Source::Hook));
        assert!(!c.add(record("a", 1, 10), Source::Hook), "the same record twice is not a change");
        assert_eq!(c.by_mntns(1).unwrap().runtime.container_id, "a");
        assert_eq!(c.by_netns(10).len(), 2);
        assert_eq!(c.by_id("b").unwrap().mntns, 2);
        assert_eq!(
            c.snapshot().iter().map(|r| r.runtime.container_id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
    }

    #[test]
    fn removed_containers_enrich_for_a_grace_period() {
        let c = Collection::new();
        c.add(record("a", 1, 10), Source::Hook);
        assert!(c.remove("a").is_some());
        assert!(c.remove("a").is_none());
        assert!(c.by_id("a").is_none());
        assert!(c.by_netns(10).is_empty());
        assert_eq!(c.by_mntns(1).unwrap().runtime.container_id, "a", "still enriches late events");
        assert!(c.is_empty());
    }

    #[test]
    fn a_removed_container_names_only_what_happened_before_its_removal() {
        let c = Collection::new();
        c.add(record("a", 1, 10), Source::Hook);
        let before = crate::event::boottime_ns();
        assert_eq!(c.by_mntns_at(1, before).unwrap().runtime.container_id, "a", "it runs");
        c.remove("a");
        let after = crate::event::boottime_ns();
        assert_eq!(c.by_mntns_at(1, before).unwrap().runtime.container_id, "a", "a late event");
        assert!(c.by_mntns_at(1, after).is_none(), "the number's next owner, not the container");
    }

    #[test]
    fn subscribers_get_existing_then_changes() {
        let c = Collection::new();
        c.add(record("a", 1, 10), Source::Hook);
        let (tx, rx) = channel();
        let sub = c.subscribe(move |ch| {
            let _ = tx.send(match ch {
                Change::Added(r) => format!("+{}", r.runtime.container_id),
                Change::Removed(r) => format!("-{}", r.runtime.container_id),
            });
        });
        c.add(record("b", 2, 20), Source::Hook);
        c.remove("a");
        drop(sub);
        c.add(record("c", 3, 30), Source::Hook);
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), ["+a", "+b", "-a"]);
    }

    /// The kernel reused a's mount namespace number for b before a's
    /// removal arrived: the number is b's, while b runs and after it stops.
    #[test]
    fn a_late_removal_leaves_a_reused_mount_namespace_to_the_later_container() {
        let c = Collection::new();
        c.add(record("a", 7, 10), Source::Hook);
        c.add(record("b", 7, 20), Source::Hook);
        c.remove("a");
        assert_eq!(c.by_mntns(7).unwrap().runtime.container_id, "b", "b runs");
        c.remove("b");
        assert_eq!(c.by_mntns(7).unwrap().runtime.container_id, "b", "b stopped");
        // b's removal first, then a's late one: still b.
        let c = Collection::new();
        c.add(record("a", 7, 10), Source::Hook);
        c.add(record("b", 7, 20), Source::Hook);
        c.remove("b");
        c.remove("a");
        assert_eq!(c.by_mntns(7).unwrap().runtime.container_id, "b", "a's late removal took b's number");
    }

    #[test]
    fn a_replaced_record_is_reindexed() {
        let c = Collection::new();
        c.add(record("a", 1, 10), Source::Hook);
        assert!(c.add(record("a", 5, 10), Source::Hook));
        assert!(c.by_mntns(1).is_none());
        assert_eq!(c.by_mntns(5).unwrap().runtime.container_id, "a");
        assert_eq!(c.by_netns(10).len(), 1);
    }

    #[test]
    fn counts_records_and_known_containers_per_source() {
        let c = Collection::new();
        c.add(record("a", 1, 10), Source::Hook);
        c.add_if_absent(record("a", 1, 10), Source::Fanotify);
        c.add(record("b", 2, 20), Source::Nri);
        c.add(record("b", 7, 20), Source::Spool);
        c.remove("a");
        let counts: HashMap<_, _> = c.source_counts().into_iter().collect();
        assert_eq!(counts[&Source::Hook], SourceCounts { known: 0, records: 1 });
        assert_eq!(counts[&Source::Fanotify], SourceCounts { known: 0, records: 1 });
        assert_eq!(counts[&Source::Nri], SourceCounts { known: 1, records: 1 }, "b was told by NRI first");
        assert_eq!(counts[&Source::Spool], SourceCounts { known: 0, records: 1 });
        assert_eq!(counts[&Source::RuntimeApi], SourceCounts::default());
    }
}
