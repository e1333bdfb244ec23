//! The container record: what a container source (ig-hook, ig-nri, the
//! fanotify watcher, a runtime API) tells the tracer about one container.
//! JSON keys follow `ig list-containers -o json`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Runtime-side identity of a container (`runtime` in JSON).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RuntimeMetadata {
    /// `docker`, `containerd`, `cri-o`, `podman` or `runc`.
    pub runtime_name: String,
    pub container_id: String,
    pub container_name: String,
    pub container_image_name: String,
}

/// Kubernetes identity of a container (`k8s` in JSON); empty outside Kubernetes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct K8sMetadata {
    pub namespace: String,
    pub pod_name: String,
    pub container_name: String,
    #[serde(rename = "podUID")]
    pub pod_uid: String,
    pub pod_labels: BTreeMap<String, String>,
}

/// A pod's own labels, from those its sandbox carries: without the ones the
/// kubelet (`io.kubernetes.*`) and containerd (`io.cri-containerd.*`) add,
/// so that every source (CRI, NRI, ...) gives the labels the pod was given.
pub fn pod_labels<'a>(
    sandbox: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> BTreeMap<String, String> {
    const ADDED: [&str; 2] = ["io.kubernetes.", "io.cri-containerd."];
    sandbox
        .into_iter()
        .filter(|(k, _)| !ADDED.iter().any(|p| k.starts_with(p)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// One container as the tracer's collection holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerRecord {
    pub runtime: RuntimeMetadata,
    pub k8s: K8sMetadata,
    /// Host pid of the container's init process.
    pub pid: u32,
    /// Inode number of the container's mount namespace.
    pub mntns: u64,
    /// Inode number of the container's network namespace.
    pub netns: u64,
    pub host_network: bool,
    pub cgroup_path: String,
    #[serde(rename = "cgroupID")]
    pub cgroup_id: u64,
    pub cgroup_v2: String,
    /// OCI bundle directory, when known.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub bundle: String,
    /// OCI annotations, when known.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ContainerRecord {
    /// A record for a container whose init process is `pid`, with what
    /// /proc told about that process.
    pub fn new(
        runtime: RuntimeMetadata,
        k8s: K8sMetadata,
        pid: u32,
        info: crate::procfs::ProcessInfo,
    ) -> Self {
        Self {
            runtime,
            k8s,
            pid,
            mntns: info.mntns,
            netns: info.netns,
            host_network: info.host_network,
            cgroup_path: info.cgroups.v2_dir,
            cgroup_id: info.cgroups.id,
            cgroup_v2: info.cgroups.v2,
            bundle: String::new(),
            annotations: BTreeMap::new(),
        }
    }
}
