//! Whose the in-kernel counts of each mount namespace are.
//!
//! The kernel counts by mount namespace id, and it hands a freed id out
//! again: the next container may get the id of a namespace that counted
//! before it (a gone container's, or a host process's that no container
//! had). Counts made under an id before a container arrived in it are its
//! earlier owner's, and so are the counts of a gone container: both are
//! moved out of the kernel's map ("retired") under the owner's labels, so
//! a container's series start at what it did itself.

use std::collections::HashMap;

use super::{ContainerLabels, Count, Totals};

#[derive(Default)]
pub(super) struct NamespaceOwners {
    /// The container in each namespace now (none: the host's).
    labels: HashMap<u64, ContainerLabels>,
    /// Counts moved out of the kernel's map, by whose they were.
    retired: Totals,
}

impl NamespaceOwners {
    /// A container arrived in `mntns`. When what the kernel counted there
    /// so far was someone else's, returns whose (the host's labels when no
    /// container had it): the caller moves those counts out with
    /// [`NamespaceOwners::retire`]. `running_before` is for a container
    /// that ran before the counters loaded (the collection's first
    /// replay): what was counted is its own.
    pub(super) fn arrived(
        &mut self,
        mntns: u64,
        labels: ContainerLabels,
        running_before: bool,
    ) -> Option<ContainerLabels> {
        let before = self.labels.insert(mntns, labels.clone());
        match before {
            Some(old) if old == labels => None,
            Some(old) => Some(old),
            None if running_before => None,
            None => Some(ContainerLabels::default()),
        }
    }

    /// The container `labels` left `mntns`: returns its labels when it
    /// was the namespace's owner, whose counts the caller retires (what
    /// the id counts later is not the container's).
    pub(super) fn left(&mut self, mntns: u64, labels: &ContainerLabels) -> Option<ContainerLabels> {
        if self.labels.get(&mntns) != Some(labels) {
            return None;
        }
        self.labels.remove(&mntns)
    }

    /// Keeps `counted` (what the kernel had for one namespace) as `owner`'s.
    pub(super) fn retire(&mut self, owner: ContainerLabels, counted: impl IntoIterator<Item = (Count, u64)>) {
        for (count, n) in counted {
            *self.retired.entry((owner.clone(), count)).or_insert(0) += n;
        }
    }

    /// The totals by labels: what was retired and what the kernel counts now
    /// (`entries`: mount namespace, metric, count).
    pub(super) fn rows(&self, entries: impl IntoIterator<Item = (u64, Count, u64)>) -> Totals {
        let mut rows = self.retired.clone();
        for (mntns, count, n) in entries {
            let l = self.labels.get(&mntns).cloned().unwrap_or_default();
            *rows.entry((l, count)).or_insert(0) += n;
        }
        rows
    }

    /// Forgets the containers whose series expired; returns the namespaces
    /// they still own, whose kernel counters the caller drops.
    pub(super) fn expire(&mut self, expired: &[ContainerLabels]) -> Vec<u64> {
        let gone: Vec<u64> =
            self.labels.iter().filter(|(_, l)| expired.contains(l)).map(|(m, _)| *m).collect();
        self.labels.retain(|m, _| !gone.contains(m));
        self.retired.retain(|(l, _), _| !expired.contains(l));
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> ContainerLabels {
        ContainerLabels { container: name.into(), runtime: "runc".into(), ..Default::default() }
    }

    /// What the kernel would hold: one namespace's counts.
    fn kernel(mntns: u64, execs: u64) -> Vec<(u64, Count, u64)> {
        vec![(mntns, Count::Execs, execs)]
    }

    fn execs_of(rows: &Totals, l: &ContainerLabels) -> u64 {
        rows.get(&(l.clone(), Count::Execs)).copied().unwrap_or(0)
    }

    #[test]
    fn a_host_processs_counts_under_a_reused_id_stay_the_hosts() {
        let mut o = NamespaceOwners::default();
        // A process with a namespace of its own exec'ed once; it is gone,
        // and the kernel gives its id to a new container.
        let owner = o.arrived(7, named("web"), false).expect("counts to move out");
        assert_eq!(owner, ContainerLabels::default());
        o.retire(owner, [(Count::Execs, 1)]);
        let rows = o.rows(kernel(7, 4)); // the kernel's map, emptied, then 4
        assert_eq!(execs_of(&rows, &named("web")), 4);
        assert_eq!(execs_of(&rows, &ContainerLabels::default()), 1);
    }

    #[test]
    fn a_container_running_before_the_counters_keeps_what_they_counted() {
        let mut o = NamespaceOwners::default();
        assert_eq!(o.arrived(7, named("web"), true), None);
        assert_eq!(execs_of(&o.rows(kernel(7, 3)), &named("web")), 3);
    }

    #[test]
    fn the_same_container_told_twice_moves_nothing() {
        let mut o = NamespaceOwners::default();
        assert!(o.arrived(7, named("web"), false).is_some());
        assert_eq!(o.arrived(7, named("web"), false), None);
    }

    #[test]
    fn a_gone_containers_counts_stay_its_own_and_later_ones_are_the_hosts() {
        let mut o = NamespaceOwners::default();
        o.arrived(7, named("web"), false);
        let owner = o.left(7, &named("web")).expect("web owned 7");
        o.retire(owner, [(Count::Execs, 4)]);
        // The id counts again before anyone arrives in it: the host's.
        let rows = o.rows(kernel(7, 2));
        assert_eq!(execs_of(&rows, &named("web")), 4);
        assert_eq!(execs_of(&rows, &ContainerLabels::default()), 2);
        // A record replaced under another id leaves nothing behind here.
        assert_eq!(o.left(7, &named("db")), None);
    }

    #[test]
    fn an_expired_container_is_forgotten_with_its_namespaces() {
        let mut o = NamespaceOwners::default();
        o.arrived(7, named("web"), false);
        o.arrived(8, named("db"), false);
        o.retire(named("web"), [(Count::Execs, 1)]);
        assert_eq!(o.expire(&[named("web")]), vec![7]);
        let rows = o.rows(kernel(8, 1));
        assert_eq!(execs_of(&rows, &named("web")), 0);
        assert_eq!(execs_of(&rows, &named("db")), 1);
    }
}
