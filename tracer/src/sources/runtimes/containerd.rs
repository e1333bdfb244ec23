//! containerd's own API, for the containers of a namespace other than the
//! CRI's k8s.io (`--containerd-namespace`: `ctr`, nerdctl, BuildKit use
//! "default" and others). The containers service gives ids, labels and
//! images, the tasks service the pid of each running task. Field numbers
//! from containerd's api/services/{containers,tasks}/v1 and api/types/task.

use std::collections::HashMap;
use std::path::Path;

use shared::{ContainerRecord, K8sMetadata, RuntimeMetadata};

use super::RuntimeError;
use super::grpc_unix::Client;

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListContainersRequest {
    #[prost(string, repeated, tag = "1")]
    pub filters: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListContainersResponse {
    #[prost(message, repeated, tag = "1")]
    pub containers: Vec<Container>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Container {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(map = "string, string", tag = "2")]
    pub labels: HashMap<String, String>,
    #[prost(string, tag = "3")]
    pub image: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListTasksRequest {
    #[prost(string, tag = "1")]
    pub filter: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListTasksResponse {
    #[prost(message, repeated, tag = "1")]
    pub tasks: Vec<Process>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Process {
    #[prost(string, tag = "1")]
    pub container_id: String,
    /// A task's id: its container's (containerd's List fills this one only).
    #[prost(string, tag = "2")]
    pub id: String,
    #[prost(uint32, tag = "3")]
    pub pid: u32,
    #[prost(int32, tag = "4")]
    pub status: i32,
}

/// containerd.v1.types.Status RUNNING.
const TASK_RUNNING: i32 = 2;
/// The gRPC header containerd reads the namespace from.
const NAMESPACE_HEADER: &str = "containerd-namespace";
/// Labels tools set for a container's name.
const NAME_LABELS: &[&str] = &["nerdctl/name", "io.kubernetes.cri.container-name"];

/// The running containers of `namespace`, as records.
pub async fn enumerate(
    root: &Path,
    socket: &Path,
    namespace: &str,
) -> Result<Vec<ContainerRecord>, RuntimeError> {
    let err = |e: String| RuntimeError::Containerd(socket.display().to_string(), namespace.to_string(), e);
    let mut client = Client::connect(socket).await.map_err(|e| err(shared::error_chain(&e)))?;
    let header = [(NAMESPACE_HEADER, namespace)];
    let containers: ListContainersResponse = client
        .call("/containerd.services.containers.v1.Containers/List", &header, ListContainersRequest::default())
        .await
        .map_err(|e| err(e.message().to_string()))?;
    let tasks: ListTasksResponse = client
        .call("/containerd.services.tasks.v1.Tasks/List", &header, ListTasksRequest::default())
        .await
        .map_err(|e| err(e.message().to_string()))?;
    tracing::debug!(
        namespace,
        containers = containers.containers.len(),
        tasks = tasks.tasks.len(),
        "containerd answered"
    );
    let containers: HashMap<String, Container> =
        containers.containers.into_iter().map(|c| (c.id.clone(), c)).collect();
    let mut records = Vec::new();
    for task in tasks.tasks.into_iter().filter(|t| t.status == TASK_RUNNING && t.pid > 0) {
        let id = if task.container_id.is_empty() { &task.id } else { &task.container_id };
        let Some(container) = containers.get(id).filter(|c| !managed_by_cri(c)) else { continue };
        let info = match shared::procfs::process_info(root, task.pid) {
            Ok(i) => i,
            Err(e) => {
                tracing::debug!(id, "{}", shared::error_chain(&e));
                continue;
            }
        };
        let runtime = RuntimeMetadata {
            runtime_name: "containerd".into(),
            container_id: container.id.clone(),
            container_name: name_of(container),
            container_image_name: container.image.clone(),
        };
        records.push(ContainerRecord::new(runtime, K8sMetadata::default(), task.pid, info));
    }
    Ok(records)
}

/// The label CRI puts on what it creates in containerd ("sandbox" for a
/// pod's pause container, "container"): those are CRI's to tell, with the
/// pod's names, and a sandbox is no container at all.
const CRI_KIND_LABEL: &str = "io.cri-containerd.kind";

fn managed_by_cri(c: &Container) -> bool {
    c.labels.contains_key(CRI_KIND_LABEL)
}

/// The name a tool gave the container, or its id (as `ctr` shows it).
fn name_of(c: &Container) -> String {
    NAME_LABELS.iter().find_map(|l| c.labels.get(*l)).cloned().unwrap_or_else(|| c.id.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn a_running_task_decodes_with_its_pid() {
        // tasks (1) { container_id (1) "c1", id (2) "c1", pid (3) 4242, status (4) 2 }
        let bytes =
            [0x0a, 0x0d, 0x0a, 0x02, b'c', b'1', 0x12, 0x02, b'c', b'1', 0x18, 0x92, 0x21, 0x20, 0x02];
        let r = ListTasksResponse::decode(&bytes[..]).unwrap();
        let want = Process { container_id: "c1".into(), id: "c1".into(), pid: 4242, status: TASK_RUNNING };
        assert_eq!(r.tasks, vec![want]);
    }

    #[test]
    fn cri_sandboxes_and_containers_are_left_to_cri() {
        let mut c = Container { id: "p".into(), ..Default::default() };
        assert!(!managed_by_cri(&c), "a ctr run container");
        c.labels.insert(CRI_KIND_LABEL.into(), "sandbox".into());
        assert!(managed_by_cri(&c));
    }

    #[test]
    fn names_from_labels_or_the_id() {
        let mut c = Container { id: "abc".into(), ..Default::default() };
        assert_eq!(name_of(&c), "abc");
        c.labels.insert("nerdctl/name".into(), "web".into());
        assert_eq!(name_of(&c), "web");
    }
}
