//! From NRI pods and containers to container records, and where records go.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use shared::hookproto::{Message, VERSION};
use shared::{ContainerRecord, K8sMetadata, RuntimeMetadata};

use crate::proto::{Container, PodSandbox};

/// Where container records go.
pub trait Sink: Send {
    fn add(&mut self, record: ContainerRecord);
    fn remove(&mut self, container_id: &str);
}

/// Standalone ig-nri: exactly what ig-hook does, the spool then every tracer.
pub struct SpoolAndTracers {
    pub root: PathBuf,
    pub deadline: Duration,
}

impl Sink for SpoolAndTracers {
    fn add(&mut self, record: ContainerRecord) {
        if let Err(e) = shared::spool::write(&self.root, &record) {
            tracing::warn!("{e}: {:?}", std::error::Error::source(&e));
        }
        let id = record.runtime.container_id.clone();
        let msg = Message::Add { version: VERSION, record: Box::new(record), source: Some("nri".into()) };
        self.tell(&id, &msg);
    }

    fn remove(&mut self, container_id: &str) {
        if let Err(e) = shared::spool::remove(&self.root, container_id) {
            tracing::warn!("{e}");
        }
        let msg = Message::Remove { version: VERSION, container_id: container_id.to_string() };
        self.tell(container_id, &msg);
    }
}

impl SpoolAndTracers {
    fn tell(&self, id: &str, msg: &Message) {
        for (path, outcome) in shared::notify::notify_all(&self.root, msg, Instant::now() + self.deadline) {
            if !matches!(outcome, shared::notify::Outcome::Acked | shared::notify::Outcome::Stale) {
                tracing::warn!(id, tracer = %path.display(), "tracer did not take the record: {outcome:?}");
            }
        }
    }
}

/// The pods seen so far (container events name their pod by id).
#[derive(Default)]
pub struct Pods(HashMap<String, PodSandbox>);

impl Pods {
    pub fn put(&mut self, pod: &PodSandbox) {
        self.0.insert(pod.id.clone(), pod.clone());
    }

    pub fn forget(&mut self, pod_id: &str) {
        self.0.remove(pod_id);
    }

    pub fn get(&self, pod_id: &str) -> Option<&PodSandbox> {
        self.0.get(pod_id)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("container {0} has no pid yet")]
    NoPid(String),
    #[error("container {id}")]
    Proc {
        id: String,
        #[source]
        source: shared::procfs::ProcError,
    },
}

/// The record of a started container (its pid is known).
pub fn record(root: &Path, pod: Option<&PodSandbox>, c: &Container) -> Result<ContainerRecord, RecordError> {
    if c.pid == 0 {
        return Err(RecordError::NoPid(c.id.clone()));
    }
    let info = shared::procfs::process_info(root, c.pid)
        .map_err(|source| RecordError::Proc { id: c.id.clone(), source })?;
    let empty = PodSandbox::default();
    let pod = pod.unwrap_or(&empty);
    let runtime = RuntimeMetadata {
        runtime_name: "containerd".into(),
        container_id: c.id.clone(),
        container_name: c.name.clone(),
        container_image_name: c.annotations.get("io.kubernetes.cri.image-name").cloned().unwrap_or_default(),
    };
    let k8s = K8sMetadata {
        namespace: pod.namespace.clone(),
        pod_name: pod.name.clone(),
        container_name: c.name.clone(),
        pod_uid: pod.uid.clone(),
        pod_labels: shared::container::pod_labels(&pod.labels),
    };
    Ok(ContainerRecord {
        annotations: c.annotations.clone(),
        ..ContainerRecord::new(runtime, k8s, c.pid, info)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_record_with_kubernetes_names() {
        let pod = PodSandbox {
            id: "p1".into(),
            name: "web-0".into(),
            namespace: "shop".into(),
            uid: "uid-1".into(),
            // containerd adds its own to the pod's (1.7 and 2.x).
            labels: [
                ("app".to_string(), "web".to_string()),
                ("io.cri-containerd.kind".to_string(), "sandbox".to_string()),
                ("io.kubernetes.pod.name".to_string(), "web-0".to_string()),
            ]
            .into(),
            ..Default::default()
        };
        let c = Container {
            id: "c1".into(),
            pod_sandbox_id: "p1".into(),
            name: "nginx".into(),
            pid: std::process::id(),
            annotations: [("io.kubernetes.cri.image-name".to_string(), "nginx:1".to_string())].into(),
            ..Default::default()
        };
        let r = record(Path::new("/"), Some(&pod), &c).unwrap();
        assert_eq!(r.runtime.runtime_name, "containerd");
        assert_eq!(r.runtime.container_image_name, "nginx:1");
        assert_eq!((r.k8s.namespace.as_str(), r.k8s.pod_name.as_str()), ("shop", "web-0"));
        assert_eq!(r.k8s.pod_labels, [("app".to_string(), "web".to_string())].into(), "the pod's own labels");
        assert!(r.mntns > 0);
        assert!(matches!(record(Path::new("/"), None, &Container::default()), Err(RecordError::NoPid(_))));
    }
}
