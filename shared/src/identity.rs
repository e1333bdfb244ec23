//! Who manages a container and what it is called, from its annotations and,
//! for podman (which keeps names out of the annotations), from containers
//! storage or conmon's command line.

use std::collections::BTreeMap;
use std::path::Path;

use crate::K8sMetadata;

use crate::oci::{Config, State};

/// The runtime-side and Kubernetes names of a container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    pub runtime_name: String,
    pub container_name: String,
    pub image_name: String,
    pub k8s: K8sMetadata,
    /// A pod's pause/infra container: not a container users want to see.
    pub sandbox: bool,
}

/// Where podman's container names come from; a seam for tests.
pub trait NameSource {
    /// (name, image) from containers storage, given the bundle.
    fn podman_storage(&self, id: &str, bundle: &Path) -> Option<(String, String)>;
    /// `-n/--name` of the conmon process above this hook.
    fn conmon_name(&self) -> Option<String>;
}

/// Annotations of the state and the config, the state's winning.
pub fn annotations(state: &State, config: &Config) -> BTreeMap<String, String> {
    let mut all = config.annotations.clone();
    all.extend(state.annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
    all
}

pub fn identify(state: &State, annotations: &BTreeMap<String, String>, names: &dyn NameSource) -> Identity {
    let get = |k: &str| annotations.get(k).cloned().unwrap_or_default();
    let manager = get("io.container.manager");

    if annotations.keys().any(|k| k.starts_with("io.kubernetes.cri.")) {
        return Identity {
            runtime_name: "containerd".into(),
            container_name: get("io.kubernetes.cri.container-name"),
            image_name: get("io.kubernetes.cri.image-name"),
            k8s: K8sMetadata {
                namespace: get("io.kubernetes.cri.sandbox-namespace"),
                pod_name: get("io.kubernetes.cri.sandbox-name"),
                container_name: get("io.kubernetes.cri.container-name"),
                pod_uid: get("io.kubernetes.cri.sandbox-uid"),
                pod_labels: BTreeMap::new(),
            },
            sandbox: get("io.kubernetes.cri.container-type") == "sandbox",
        };
    }
    if manager == "cri-o" || annotations.contains_key("io.kubernetes.cri-o.ContainerType") {
        let labels: BTreeMap<String, String> =
            serde_json::from_str(&get("io.kubernetes.cri-o.Labels")).unwrap_or_default();
        let pod_labels = crate::container::pod_labels(&labels);
        let name = get("io.kubernetes.container.name");
        return Identity {
            runtime_name: "cri-o".into(),
            container_name: if name.is_empty() { get("io.kubernetes.cri-o.Name") } else { name.clone() },
            image_name: get("io.kubernetes.cri-o.ImageName"),
            k8s: K8sMetadata {
                namespace: get("io.kubernetes.pod.namespace"),
                pod_name: get("io.kubernetes.pod.name"),
                container_name: name,
                pod_uid: get("io.kubernetes.pod.uid"),
                pod_labels,
            },
            sandbox: get("io.kubernetes.cri-o.ContainerType") == "sandbox",
        };
    }
    if manager == "libpod" {
        let (name, image) = names
            .podman_storage(&state.id, Path::new(&state.bundle))
            .or_else(|| names.conmon_name().map(|n| (n, String::new())))
            .unwrap_or_else(|| (state.id.clone(), String::new()));
        return Identity {
            runtime_name: "podman".into(),
            container_name: name,
            image_name: image,
            ..Default::default()
        };
    }
    // containerd keeps task bundles in <state>/io.containerd.runtime.v2.task/<namespace>/<id>;
    // dockerd's containerd uses the namespace "moby".
    let runtime = match containerd_namespace(&state.bundle) {
        Some("moby") => "docker",
        Some(_) => "containerd",
        None => "runc",
    };
    Identity { runtime_name: runtime.into(), container_name: state.id.clone(), ..Default::default() }
}

/// The containerd namespace of a task bundle path, if it is one.
pub fn containerd_namespace(bundle: &str) -> Option<&str> {
    let (_, rest) = bundle.split_once("/io.containerd.runtime.v2.task/")?;
    rest.split('/').next().filter(|ns| !ns.is_empty())
}

/// Names from the host: containers storage and the process tree.
pub struct HostNames<'a> {
    pub root: &'a Path,
    /// Where the search for conmon starts: the hook's parent (runc), or the
    /// caller of a runtime exec the fanotify watcher saw.
    pub start_pid: u32,
}

impl NameSource for HostNames<'_> {
    fn podman_storage(&self, id: &str, bundle: &Path) -> Option<(String, String)> {
        // <graphroot>/overlay-containers/<id>/userdata
        let containers = bundle.parent()?.parent()?;
        ["containers.json", "volatile-containers.json"]
            .iter()
            .find_map(|f| storage_entry(&containers.join(f), id))
    }

    fn conmon_name(&self) -> Option<String> {
        // hook <- runc <- conmon: look a few levels up.
        let mut pid = self.start_pid;
        for _ in 0..4 {
            let (ppid, comm) = crate::procfs::parent_and_comm(self.root, pid).ok()?;
            if comm == "conmon" {
                return conmon_name_arg(&crate::procfs::cmdline(self.root, pid).ok()?);
            }
            pid = ppid;
        }
        None
    }
}

/// (name, image) of container `id` in a containers-storage JSON list.
pub fn storage_entry(path: &Path, id: &str) -> Option<(String, String)> {
    let bytes = std::fs::read(path).ok()?;
    let list: Vec<serde_json::Value> = serde_json::from_slice(&bytes).ok()?;
    let entry = list.iter().find(|e| e["id"] == id)?;
    let name = entry["names"].get(0)?.as_str()?.to_string();
    // podman keeps its own metadata as a JSON string inside the entry.
    let meta: serde_json::Value = serde_json::from_str(entry["metadata"].as_str().unwrap_or("{}")).ok()?;
    let image = meta["image-name"].as_str().unwrap_or_default().to_string();
    Some((name, image))
}

/// The value of conmon's `-n NAME`, `--name NAME` or `--name=NAME`.
pub fn conmon_name_arg(args: &[String]) -> Option<String> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "-n" || a == "--name" {
            return it.next().cloned();
        }
        if let Some(v) = a.strip_prefix("--name=") {
            return Some(v.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoNames;
    impl NameSource for NoNames {
        fn podman_storage(&self, _: &str, _: &Path) -> Option<(String, String)> {
            None
        }
        fn conmon_name(&self) -> Option<String> {
            None
        }
    }

    struct Podman;
    impl NameSource for Podman {
        fn podman_storage(&self, _: &str, _: &Path) -> Option<(String, String)> {
            Some(("web".into(), "localhost/img:1".into()))
        }
        fn conmon_name(&self) -> Option<String> {
            Some("from-conmon".into())
        }
    }

    fn state(id: &str, bundle: &str) -> State {
        State { id: id.into(), bundle: bundle.into(), ..Default::default() }
    }

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn containerd_cri_gives_kubernetes_names() {
        let a = ann(&[
            ("io.kubernetes.cri.container-type", "container"),
            ("io.kubernetes.cri.container-name", "app"),
            ("io.kubernetes.cri.sandbox-name", "pod-1"),
            ("io.kubernetes.cri.sandbox-namespace", "ns"),
            ("io.kubernetes.cri.sandbox-uid", "uid-1"),
            ("io.kubernetes.cri.image-name", "busybox:1"),
        ]);
        let id = identify(&state("c", "/b"), &a, &NoNames);
        assert_eq!(id.runtime_name, "containerd");
        assert_eq!((id.k8s.namespace.as_str(), id.k8s.pod_name.as_str()), ("ns", "pod-1"));
        assert_eq!((id.container_name.as_str(), id.image_name.as_str()), ("app", "busybox:1"));
        assert!(!id.sandbox);
        let pause = ann(&[("io.kubernetes.cri.container-type", "sandbox")]);
        assert!(identify(&state("p", "/b"), &pause, &NoNames).sandbox);
    }

    #[test]
    fn crio_gives_kubernetes_names_and_labels() {
        let a = ann(&[
            ("io.container.manager", "cri-o"),
            ("io.kubernetes.cri-o.ContainerType", "container"),
            ("io.kubernetes.container.name", "app"),
            ("io.kubernetes.pod.name", "pod-1"),
            ("io.kubernetes.pod.namespace", "ns"),
            ("io.kubernetes.pod.uid", "uid-1"),
            ("io.kubernetes.cri-o.Labels", r#"{"app":"web","io.kubernetes.pod.name":"pod-1"}"#),
        ]);
        let id = identify(&state("c", "/b"), &a, &NoNames);
        assert_eq!(id.runtime_name, "cri-o");
        assert_eq!(id.k8s.pod_labels, ann(&[("app", "web")]));
        assert_eq!(id.container_name, "app");
    }

    #[test]
    fn podman_names_come_from_storage_then_conmon_then_the_id() {
        let a = ann(&[("io.container.manager", "libpod")]);
        let id = identify(&state("abc", "/b"), &a, &Podman);
        assert_eq!((id.runtime_name.as_str(), id.container_name.as_str()), ("podman", "web"));
        assert_eq!(id.image_name, "localhost/img:1");
        assert_eq!(identify(&state("abc", "/b"), &a, &NoNames).container_name, "abc");
    }

    #[test]
    fn plain_runc_and_docker() {
        let id = identify(&state("mine", "/tmp/bundle"), &BTreeMap::new(), &NoNames);
        assert_eq!((id.runtime_name.as_str(), id.container_name.as_str()), ("runc", "mine"));
        let d = identify(
            &state("d1", "/run/x/io.containerd.runtime.v2.task/moby/d1"),
            &BTreeMap::new(),
            &NoNames,
        );
        assert_eq!(d.runtime_name, "docker");
        let c = identify(
            &state("c1", "/var/run/containerd/io.containerd.runtime.v2.task/default/c1"),
            &BTreeMap::new(),
            &NoNames,
        );
        assert_eq!((c.runtime_name.as_str(), c.container_name.as_str()), ("containerd", "c1"));
    }

    #[test]
    fn reads_containers_storage_entries() {
        let dir = std::env::temp_dir().join(format!("ig-hook-storage-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("containers.json");
        std::fs::write(
            &f,
            r#"[{"id":"abc","names":["web"],"metadata":"{\"image-name\":\"localhost/img:1\",\"name\":\"web\"}"}]"#,
        )
        .unwrap();
        assert_eq!(storage_entry(&f, "abc"), Some(("web".into(), "localhost/img:1".into())));
        assert_eq!(storage_entry(&f, "other"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn parses_conmon_names() {
        let args: Vec<String> =
            ["conmon", "-c", "id", "-n", "web", "-b", "/b"].iter().map(|s| s.to_string()).collect();
        assert_eq!(conmon_name_arg(&args).as_deref(), Some("web"));
        assert_eq!(conmon_name_arg(&["conmon".into(), "--name=x".into()]).as_deref(), Some("x"));
        assert_eq!(conmon_name_arg(&["conmon".into(), "-n".into()]), None);
    }
}
