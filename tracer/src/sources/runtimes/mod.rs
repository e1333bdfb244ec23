//! The containers already running when ig starts, asked once from each
//! runtime's API (`-r/--runtimes`). A runtime whose socket is absent is
//! skipped quietly; one that answers with an error is reported once. New
//! containers never come from here: they arrive push-style (hook, NRI,
//! fanotify).

pub mod containerd;
pub mod cri;
pub mod docker;
pub mod grpc_unix;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use shared::ContainerRecord;

/// How long start-up enumeration may take in all.
const ENUMERATION_BOUND: Duration = Duration::from_secs(3);

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Runtime {
    Docker,
    Containerd,
    #[value(name = "cri-o")]
    CriO,
    Podman,
}

/// The runtime flags every command that keeps a container collection takes.
#[derive(Clone, Debug, Args)]
pub struct RuntimeOptions {
    /// Container runtimes to ask for the containers already running.
    #[arg(
        short = 'r',
        long = "runtimes",
        global = true,
        value_delimiter = ',',
        default_value = "docker,containerd,cri-o,podman"
    )]
    pub runtimes: Vec<Runtime>,
    #[arg(long = "docker-socketpath", global = true, default_value = "/run/docker.sock")]
    pub docker_socket: PathBuf,
    #[arg(long = "containerd-socketpath", global = true, default_value = "/run/containerd/containerd.sock")]
    pub containerd_socket: PathBuf,
    #[arg(long = "containerd-namespace", global = true, default_value = "k8s.io")]
    pub containerd_namespace: String,
    #[arg(long = "crio-socketpath", global = true, default_value = "/run/crio/crio.sock")]
    pub crio_socket: PathBuf,
    #[arg(long = "podman-socketpath", global = true, default_value = "/run/podman/podman.sock")]
    pub podman_socket: PathBuf,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            runtimes: vec![Runtime::Docker, Runtime::Containerd, Runtime::CriO, Runtime::Podman],
            docker_socket: "/run/docker.sock".into(),
            containerd_socket: "/run/containerd/containerd.sock".into(),
            containerd_namespace: "k8s.io".into(),
            crio_socket: "/run/crio/crio.sock".into(),
            podman_socket: "/run/podman/podman.sock".into(),
        }
    }
}

/// What start-up enumeration learnt.
#[derive(Debug, Default)]
pub struct Enumerated {
    pub records: Vec<ContainerRecord>,
    /// dockerd's data root, where each container's name is on disk.
    pub docker_root: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("asking the Docker API on {0}")]
    Docker(String, #[source] docker::ApiError),
    #[error("asking the CRI service on {0}: {1}")]
    Cri(String, String),
    #[error("asking containerd on {0} for namespace {1}: {2}")]
    Containerd(String, String, String),
}

/// The sockets of the selected runtimes that exist on this host.
#[derive(Default)]
struct Sockets {
    docker: Option<PathBuf>,
    podman: Option<PathBuf>,
    containerd: Option<PathBuf>,
    crio: Option<PathBuf>,
}

impl Sockets {
    fn find(root: &Path, opts: &RuntimeOptions) -> Self {
        let want = |r| opts.runtimes.contains(&r);
        let socket = |r: Runtime, p: &PathBuf| {
            if !want(r) {
                return None;
            }
            let s = shared::hookproto::on_host(root, p);
            if s.exists() {
                Some(s)
            } else {
                tracing::debug!(socket = %s.display(), "runtime socket absent: skipped");
                None
            }
        };
        Self {
            docker: socket(Runtime::Docker, &opts.docker_socket),
            podman: socket(Runtime::Podman, &opts.podman_socket),
            containerd: socket(Runtime::Containerd, &opts.containerd_socket),
            crio: socket(Runtime::CriO, &opts.crio_socket),
        }
    }

    fn none(&self) -> bool {
        self.docker.is_none() && self.podman.is_none() && self.containerd.is_none() && self.crio.is_none()
    }
}

/// Asks every selected runtime whose socket exists, concurrently, within
/// [`ENUMERATION_BOUND`]. On a thread of its own, so that it works from
/// inside an async caller too; with no socket there, nothing is started.
pub fn enumerate(root: &Path, opts: &RuntimeOptions) -> Enumerated {
    let sockets = Sockets::find(root, opts);
    if sockets.none() {
        return Enumerated::default();
    }
    std::thread::scope(|s| s.spawn(|| enumerate_here(root, opts, &sockets)).join().unwrap_or_default())
}

fn enumerate_here(root: &Path, opts: &RuntimeOptions, sockets: &Sockets) -> Enumerated {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::warn!("asking the runtimes for running containers: {e}");
            return Enumerated::default();
        }
    };
    rt.block_on(async {
        let mut out = Enumerated::default();
        let (docker_sock, podman_sock) = (&sockets.docker, &sockets.podman);
        let docker = async {
            match docker_sock {
                Some(s) => Some(docker::enumerate(root, s, "docker").await),
                None => None,
            }
        };
        let podman = async {
            match podman_sock {
                Some(s) => Some(docker::enumerate(root, s, "podman").await),
                None => None,
            }
        };
        // containerd answers CRI for its "k8s.io" namespace (with the pods'
        // metadata), its own API for the others; CRI-O CRI for all of its containers.
        let (containerd_sock, crio_sock) = (&sockets.containerd, &sockets.crio);
        let containerd = async {
            match containerd_sock {
                Some(s) if opts.containerd_namespace == "k8s.io" => {
                    // `ctr -n k8s.io run` puts containers there that CRI
                    // does not know: containerd's own API has those.
                    let (cri, own) = tokio::join!(
                        cri::enumerate(root, s, "containerd"),
                        containerd::enumerate(root, s, "k8s.io")
                    );
                    Some(merge_cri_first(cri, own))
                }
                Some(s) => Some(containerd::enumerate(root, s, &opts.containerd_namespace).await),
                None => None,
            }
        };
        let crio = async {
            match crio_sock {
                Some(s) => Some(cri::enumerate(root, s, "cri-o").await),
                None => None,
            }
        };
        let all = async { tokio::join!(docker, podman, containerd, crio) };
        let Ok((docker, podman, containerd, crio)) = tokio::time::timeout(ENUMERATION_BOUND, all).await
        else {
            tracing::warn!("the runtimes did not answer within {ENUMERATION_BOUND:?}");
            return out;
        };
        for (name, result) in [("containerd", containerd), ("cri-o", crio)] {
            match result {
                Some(Ok(records)) => out.records.extend(records),
                Some(Err(e)) => tracing::warn!("{name}: {}", shared::error_chain(&e)),
                None => {}
            }
        }
        for (name, result) in [("docker", docker), ("podman", podman)] {
            match result {
                Some(Ok(found)) => {
                    if name == "docker" {
                        out.docker_root = found.data_root;
                    }
                    out.records.extend(found.records);
                }
                Some(Err(e)) => tracing::warn!("{name}: {}", shared::error_chain(&e)),
                None => {}
            }
        }
        out
    })
}

/// CRI's records (they carry the pods' metadata), then those of containerd's
/// own API that CRI does not have; either alone when the other failed.
fn merge_cri_first(
    cri: Result<Vec<ContainerRecord>, RuntimeError>,
    own: Result<Vec<ContainerRecord>, RuntimeError>,
) -> Result<Vec<ContainerRecord>, RuntimeError> {
    match (cri, own) {
        (Ok(mut records), Ok(own)) => {
            let known: std::collections::HashSet<String> =
                records.iter().map(|r| r.runtime.container_id.clone()).collect();
            records.extend(own.into_iter().filter(|r| !known.contains(&r.runtime.container_id)));
            Ok(records)
        }
        (Ok(records), Err(e)) => {
            tracing::debug!("containerd's own API: {}", shared::error_chain(&e));
            Ok(records)
        }
        (Err(e), Ok(own)) => {
            tracing::warn!("containerd CRI: {}", shared::error_chain(&e));
            Ok(own)
        }
        (Err(e), Err(_)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, pod: &str) -> ContainerRecord {
        let mut r = ContainerRecord::default();
        r.runtime.container_id = id.into();
        r.k8s.pod_name = pod.into();
        r
    }

    fn failed() -> RuntimeError {
        RuntimeError::Containerd("sock".into(), "k8s.io".into(), "down".into())
    }

    #[test]
    fn ctr_containers_of_k8s_io_join_the_cri_ones_which_keep_their_pods() {
        let cri = Ok(vec![record("a", "web-0")]);
        let own = Ok(vec![record("a", ""), record("ctr-1", "")]);
        let merged = merge_cri_first(cri, own).unwrap();
        let ids: Vec<(&str, &str)> =
            merged.iter().map(|r| (r.runtime.container_id.as_str(), r.k8s.pod_name.as_str())).collect();
        assert_eq!(ids, [("a", "web-0"), ("ctr-1", "")]);
        assert_eq!(merge_cri_first(Ok(vec![record("a", "p")]), Err(failed())).unwrap().len(), 1);
        assert_eq!(merge_cri_first(Err(failed()), Ok(vec![record("b", "")])).unwrap().len(), 1);
        assert!(merge_cri_first(Err(failed()), Err(failed())).is_err());
    }
}
