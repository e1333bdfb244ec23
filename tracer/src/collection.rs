//! The container collection: every container the tracer knows, indexed by
//! mount namespace for enrichment.

use std::collections::HashMap;
use std::sync::Arc;

use shared::ContainerRecord;

#[derive(Debug, Default)]
pub struct ContainerCollection {
    by_mntns: HashMap<u64, Arc<ContainerRecord>>,
}

impl ContainerCollection {
    pub fn insert(&mut self, record: ContainerRecord) -> Arc<ContainerRecord> {
        let record = Arc::new(record);
        self.by_mntns.insert(record.mntns, record.clone());
        record
    }

    pub fn by_mntns(&self, mntns: u64) -> Option<Arc<ContainerRecord>> {
        self.by_mntns.get(&mntns).cloned()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<ContainerRecord>> {
        self.by_mntns.values()
    }

    pub fn is_empty(&self) -> bool {
        self.by_mntns.is_empty()
    }
}

/// Which containers a gadget run selects (`-c/--containername`).
#[derive(Clone, Debug, Default)]
pub struct ContainerSelector {
    pub name: Option<String>,
}

impl ContainerSelector {
    pub fn matches(&self, record: &ContainerRecord) -> bool {
        match &self.name {
            None => true,
            Some(n) => &record.runtime.container_name == n || &record.k8s.container_name == n,
        }
    }
}
