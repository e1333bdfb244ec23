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
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use shared::ContainerRecord;

/// How long a removed container still enriches late events.
pub const REMOVED_GRACE: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub enum Change {
    Added(Arc<ContainerRecord>),
    Removed(Arc<ContainerRecord>),
}

type Subscriber = Box<dyn Fn(&Change) + Send>;

#[derive(Default)]
struct Inner {
    by_id: HashMap<String, Arc<ContainerRecord>>,
    by_mntns: HashMap<u64, Arc<ContainerRecord>>,
    by_netns: HashMap<u64, Vec<Arc<ContainerRecord>>>,
    removed: HashMap<u64, (Instant, Arc<ContainerRecord>)>,
    subscribers: Vec<(u64, Subscriber)>,
    next_subscriber: u64,
}

#[derive(Default)]
pub struct Collection {
    inner: Mutex<Inner>,
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

    /// Adds or replaces a container; returns false when the same record was
    /// already there (a container learnt from two sources).
    pub fn add(&self, record: ContainerRecord) -> bool {
        let mut inner = self.lock();
        if let Some(old) = inner.by_id.get(&record.runtime.container_id) {
            if **old == record {
                return false;
            }
            let old = old.clone();
            inner.unindex(&old);
        }
        inner.insert(record);
        true
    }

    /// Adds a container unless one with its id is already there: a fallback
    /// source must not replace what a richer one (a hook, NRI) said.
    pub fn add_if_absent(&self, record: ContainerRecord) -> bool {
        let mut inner = self.lock();
        if inner.by_id.contains_key(&record.runtime.container_id) {
            return false;
        }
        inner.insert(record);
        true
    }

    /// Removes a container by id; returns it if it was there.
    pub fn remove(&self, container_id: &str) -> Option<Arc<ContainerRecord>> {
        let mut inner = self.lock();
        let record = inner.by_id.get(container_id).cloned()?;
        inner.unindex(&record);
        let now = Instant::now();
        inner.removed.retain(|_, (at, _)| now.duration_since(*at) < REMOVED_GRACE);
        inner.removed.insert(record.mntns, (now, record.clone()));
        inner.notify(&Change::Removed(record.clone()));
        Some(record)
    }

    /// The container of a mount namespace, including one removed less than
    /// [`REMOVED_GRACE`] ago.
    pub fn by_mntns(&self, mntns: u64) -> Option<Arc<ContainerRecord>> {
        let inner = self.lock();
        if let Some(r) = inner.by_mntns.get(&mntns) {
            return Some(r.clone());
        }
        inner.removed.get(&mntns).filter(|(at, _)| at.elapsed() < REMOVED_GRACE).map(|(_, r)| r.clone())
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

    /// Calls `f` with `Added` for every container already there, then for
    /// every later change, until the returned subscription is dropped. `f`
    /// runs with the collection locked: it must not call back into it.
    pub fn subscribe(self: &Arc<Self>, f: impl Fn(&Change) + Send + 'static) -> Subscription {
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
    fn insert(&mut self, record: ContainerRecord) {
        let record = Arc::new(record);
        self.removed.remove(&record.mntns);
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

    #[test]
    fn indexes_by_id_mntns_and_netns() {
        let c = Collection::new();
        assert!(c.add(record("a", 1, 10)));
        assert!(c.add(record("b", 2, 10)));
        assert!(!c.add(record("a", 1, 10)), "the same record twice is not a change");
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
        c.add(record("a", 1, 10));
        assert!(c.remove("a").is_some());
        assert!(c.remove("a").is_none());
        assert!(c.by_id("a").is_none());
        assert!(c.by_netns(10).is_empty());
        assert_eq!(c.by_mntns(1).unwrap().runtime.container_id, "a", "still enriches late events");
        assert!(c.is_empty());
    }

    #[test]
    fn subscribers_get_existing_then_changes() {
        let c = Collection::new();
        c.add(record("a", 1, 10));
        let (tx, rx) = channel();
        let sub = c.subscribe(move |ch| {
            let _ = tx.send(match ch {
                Change::Added(r) => format!("+{}", r.runtime.container_id),
                Change::Removed(r) => format!("-{}", r.runtime.container_id),
            });
        });
        c.add(record("b", 2, 20));
        c.remove("a");
        drop(sub);
        c.add(record("c", 3, 30));
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), ["+a", "+b", "-a"]);
    }

    #[test]
    fn a_replaced_record_is_reindexed() {
        let c = Collection::new();
        c.add(record("a", 1, 10));
        assert!(c.add(record("a", 5, 10)));
        assert!(c.by_mntns(1).is_none());
        assert_eq!(c.by_mntns(5).unwrap().runtime.container_id, "a");
        assert_eq!(c.by_netns(10).len(), 1);
    }
}
