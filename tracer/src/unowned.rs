//! Events whose process the kernel could not tell (a retransmit timer, a
//! packet dropped for no socket): they belong to the container that owns
//! the network namespace they happened in. The kernel lets them through its
//! mount-namespace filter, so the selection is applied here instead.

use std::path::Path;
use std::sync::Arc;

use shared::ContainerRecord;

use crate::collection::Collection;
use crate::selector::ContainerSelector;
use crate::session::FilterMode;

/// What a run selects, applied to events placed by network namespace.
pub struct NetnsScope {
    mode: FilterMode,
    selector: ContainerSelector,
    /// The host's own network namespace: a container sharing it (host
    /// networking) does not own what happens there.
    host_netns: u64,
}

impl NetnsScope {
    pub fn new(mode: FilterMode, selector: ContainerSelector, root: &Path) -> Self {
        let host_netns = netns_of(&root.join("proc/1/ns/net"))
            .or_else(|| netns_of(Path::new("/proc/self/ns/net")))
            .unwrap_or(0);
        Self { mode, selector, host_netns }
    }

    /// Whether the run shows what a process of `container` (None: the
    /// host's) does: the kernel filter's rule, for what userspace selects.
    pub fn shows(&self, container: Option<&ContainerRecord>) -> bool {
        match (container, self.mode) {
            (_, FilterMode::Off) => true,
            (None, FilterMode::Only) => false,
            (None, FilterMode::Except) => true,
            (Some(c), _) => self.selector.matches(c),
        }
    }

    /// The container of an event in `netns` (None: the host's), or Err when
    /// the run does not show it.
    pub fn place(&self, collection: &Collection, netns: u64) -> Result<Option<Arc<ContainerRecord>>, Hidden> {
        let container = if netns == 0 || netns == self.host_netns {
            None
        } else {
            // A pod's containers share it; they carry the same pod fields.
            collection.by_netns(netns).into_iter().find(|c| !c.host_network)
        };
        if self.shows(container.as_deref()) { Ok(container) } else { Err(Hidden) }
    }
}

/// The event is outside the run's selection.
#[derive(Debug)]
pub struct Hidden;

fn netns_of(link: &Path) -> Option<u64> {
    let target = std::fs::read_link(link).ok()?;
    let text = target.to_str()?;
    text.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, netns: u64) -> ContainerRecord {
        let mut r = ContainerRecord::default();
        r.runtime.container_id = format!("id-{name}");
        r.runtime.container_name = name.into();
        r.mntns = netns + 1;
        r.netns = netns;
        r
    }

    #[test]
    fn an_event_goes_to_the_container_owning_its_netns_and_follows_the_selection() {
        let c = Collection::new();
        c.add(record("web", 100), crate::collection::Source::Hook);
        c.add(record("db", 200), crate::collection::Source::Hook);
        let sel = |s: &str| ContainerSelector::named(s);
        let all =
            NetnsScope { mode: FilterMode::Only, selector: ContainerSelector::default(), host_netns: 1 };
        assert_eq!(all.place(&c, 100).unwrap().unwrap().runtime.container_name, "web");
        assert!(all.place(&c, 1).is_err(), "the host's netns is not a container's");
        assert!(all.place(&c, 300).is_err(), "a netns no container owns");
        let web = NetnsScope { mode: FilterMode::Only, selector: sel("web"), host_netns: 1 };
        assert!(web.place(&c, 200).is_err());
        assert!(web.place(&c, 100).is_ok());
        let host_and_web = NetnsScope { mode: FilterMode::Except, selector: sel("web"), host_netns: 1 };
        assert!(host_and_web.place(&c, 1).unwrap().is_none());
        assert!(host_and_web.place(&c, 200).is_err());
        let host =
            NetnsScope { mode: FilterMode::Off, selector: ContainerSelector::default(), host_netns: 1 };
        assert!(host.place(&c, 200).unwrap().is_some());
    }
}
