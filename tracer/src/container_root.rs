//! Where a container's own files are reachable from the tracer.
//!
//! Through its init's `/proc/<pid>/root` once that process has entered the
//! container's root. A record can arrive before it has (a hook's
//! createRuntime comes before pivot_root): its `/proc/<pid>/root` is then
//! still the mount namespace's old root, where the container's root
//! filesystem is mounted at the path its bundle's config.json names.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use shared::ContainerRecord;

/// The container's root filesystem, as a path here.
pub fn container_root(host_root: &Path, record: &ContainerRecord) -> PathBuf {
    let proc_root = host_root.join(format!("proc/{}/root", record.pid));
    if record.bundle.is_empty() || entered_own_root(host_root, &proc_root) {
        return proc_root;
    }
    let bundle = Path::new(&record.bundle);
    match shared::oci::read_config(bundle).map(|c| c.root) {
        Ok(Some(root)) if !root.path.is_empty() => {
            let path = bundle.join(&root.path); // an absolute root.path replaces the bundle
            proc_root.join(path.strip_prefix("/").unwrap_or(&path))
        }
        Ok(_) => proc_root,
        Err(e) => {
            tracing::debug!(bundle = %bundle.display(), "no root path from the bundle: {}", shared::error_chain(&e));
            proc_root
        }
    }
}

/// The process's root is not the host's: it has pivoted into its own.
fn entered_own_root(host_root: &Path, proc_root: &Path) -> bool {
    let id = |p: &Path| std::fs::metadata(p).map(|m| (m.dev(), m.ino())).ok();
    match (id(proc_root), id(host_root)) {
        (Some(own), Some(host)) => own != host,
        // Gone, or not ours to read: the proc path says so when used.
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_still_in_the_hosts_root_is_given_its_bundles_rootfs() {
        let dir = std::env::temp_dir().join(format!("ig-croot-{}", std::process::id()));
        let bundle = dir.join("bundle");
        std::fs::create_dir_all(&bundle).unwrap();
        std::fs::write(bundle.join("config.json"), r#"{"root":{"path":"rootfs"}}"#).unwrap();
        // This test's own process is in the host's root: not pivoted.
        let mut record = ContainerRecord {
            pid: std::process::id(),
            bundle: bundle.display().to_string(),
            ..Default::default()
        };
        let root = container_root(Path::new("/"), &record);
        let want = PathBuf::from(format!("/proc/{}/root", record.pid))
            .join(bundle.join("rootfs").strip_prefix("/").unwrap());
        assert_eq!(root, want);
        std::fs::write(bundle.join("config.json"), r#"{"root":{"path":"/abs/root"}}"#).unwrap();
        assert_eq!(
            container_root(Path::new("/"), &record),
            PathBuf::from(format!("/proc/{}/root/abs/root", record.pid))
        );
        record.bundle.clear();
        assert_eq!(
            container_root(Path::new("/"), &record),
            PathBuf::from(format!("/proc/{}/root", record.pid))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
