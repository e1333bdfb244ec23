//! The kernel's set of selected pods' network namespaces, kept as their
//! containers come and go: a namespace stays while any container of the
//! pod is selected.

use std::collections::{HashMap, HashSet};

use aya::maps::{HashMap as BpfHashMap, MapData};

use crate::gadgets::PerContainer;

pub struct PodNetns {
    map: BpfHashMap<MapData, u64, u8>,
    /// Containers by id, with their network namespace.
    netns_of: HashMap<String, u64>,
    /// The containers listed under each namespace.
    users: HashMap<u64, HashSet<String>>,
}

impl PodNetns {
    pub fn new(map: BpfHashMap<MapData, u64, u8>) -> Self {
        Self { map, netns_of: HashMap::new(), users: HashMap::new() }
    }
}

impl PerContainer for PodNetns {
    fn added(&mut self, container: Option<&shared::ContainerRecord>, _root: &dyn Fn() -> std::path::PathBuf) {
        let Some(r) = container else { return };
        if r.host_network || r.netns == 0 {
            tracing::warn!(
                "advise network-policy: {} uses the host's network: no NetworkPolicy applies to it",
                r.runtime.container_name
            );
            return;
        }
        let users = self.users.entry(r.netns).or_default();
        if users.is_empty()
            && let Err(e) = self.map.insert(r.netns, 1, 0)
        {
            tracing::warn!(
                "advise network-policy: {}: adding its network namespace: {e}",
                r.runtime.container_name
            );
            return;
        }
        users.insert(r.runtime.container_id.clone());
        self.netns_of.insert(r.runtime.container_id.clone(), r.netns);
    }

    fn removed(&mut self, key: &str) {
        let Some(netns) = self.netns_of.remove(key) else { return };
        let Some(users) = self.users.get_mut(&netns) else { return };
        users.remove(key);
        if users.is_empty() {
            self.users.remove(&netns);
            let _ = self.map.remove(&netns);
        }
    }
}
