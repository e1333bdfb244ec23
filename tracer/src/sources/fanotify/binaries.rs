//! Which OCI runtime binaries to mark: the usual install paths of runc and
//! crun (distributions, CRI-O, k3s, rke2, k0s, torcx), or `RUNTIME_PATH`
//! (colon-separated), resolved under the host root so that a symlink on the
//! host is followed on the host's side.

use std::path::{Component, Path, PathBuf};

pub const KNOWN: &[&str] = &[
    "/bin/runc",
    "/usr/bin/runc",
    "/usr/sbin/runc",
    "/usr/local/bin/runc",
    "/usr/local/sbin/runc",
    "/usr/lib/cri-o-runc/sbin/runc",
    "/usr/libexec/crio/runc",
    "/run/torcx/unpack/docker/bin/runc",
    "/var/lib/rancher/k3s/data/current/bin/runc",
    "/var/lib/rancher/rke2/bin/runc",
    "/var/lib/k0s/bin/runc",
    "/usr/bin/crun",
    "/usr/local/bin/crun",
    "/usr/libexec/crio/crun",
];

/// The host paths to try: `RUNTIME_PATH` when set, else [`KNOWN`].
pub fn candidates(runtime_path: Option<&str>) -> Vec<String> {
    match runtime_path.filter(|s| !s.trim().is_empty()) {
        Some(list) => list.split(':').filter(|p| !p.is_empty()).map(String::from).collect(),
        None => KNOWN.iter().map(|s| s.to_string()).collect(),
    }
}

/// `host_path` resolved inside `root`: symlinks (absolute ones against
/// `root`) are followed, `..` never leaves `root`. None when it does not
/// exist or loops.
pub fn resolve(root: &Path, host_path: &str) -> Option<PathBuf> {
    let mut pending: Vec<PathBuf> = vec![PathBuf::from(host_path)];
    let mut resolved = PathBuf::from("/");
    let mut links = 0;
    while let Some(path) = pending.pop() {
        let mut comps: Vec<Component> = path.components().collect();
        comps.reverse();
        while let Some(c) = comps.pop() {
            match c {
                Component::RootDir => resolved = PathBuf::from("/"),
                Component::CurDir | Component::Prefix(_) => {}
                Component::ParentDir => {
                    resolved.pop();
                }
                Component::Normal(name) => {
                    let next = resolved.join(name);
                    let on_host = shared::hookproto::on_host(root, &next);
                    let meta = std::fs::symlink_metadata(&on_host).ok()?;
                    if meta.file_type().is_symlink() {
                        links += 1;
                        if links > 40 {
                            return None;
                        }
                        let target = std::fs::read_link(&on_host).ok()?;
                        // Resolve the target, then whatever was left of this path.
                        let rest: PathBuf = comps.iter().rev().collect();
                        pending.push(rest);
                        pending.push(target);
                        break;
                    }
                    resolved = next;
                }
            }
        }
    }
    let on_host = shared::hookproto::on_host(root, &resolved);
    on_host.is_file().then_some(on_host)
}

/// The directories, on the host, that the candidates (and what their
/// symlinks point to) live in: where a runtime binary can appear.
pub fn directories(root: &Path, candidates: &[String]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for host_path in candidates {
        let mut paths = vec![shared::hookproto::on_host(root, Path::new(host_path))];
        paths.extend(resolve(root, host_path));
        for p in paths {
            if let Some(dir) = p.parent().filter(|d| d.is_dir())
                && !dirs.iter().any(|d| d == dir)
            {
                dirs.push(dir.to_path_buf());
            }
        }
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_path_overrides_the_list() {
        assert_eq!(candidates(Some("/opt/runc:/opt/crun")), vec!["/opt/runc", "/opt/crun"]);
        assert_eq!(candidates(Some(" ")).len(), KNOWN.len());
        assert_eq!(candidates(None).len(), KNOWN.len());
    }

    #[test]
    fn follows_symlinks_inside_the_root() {
        let root = std::env::temp_dir().join(format!("ig-binaries-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("usr/sbin")).unwrap();
        std::fs::create_dir_all(root.join("opt")).unwrap();
        std::fs::write(root.join("usr/sbin/runc"), b"x").unwrap();
        // An absolute link means the host's /usr/sbin/runc, i.e. root/usr/sbin/runc.
        std::os::unix::fs::symlink("/usr/sbin/runc", root.join("opt/runc")).unwrap();
        std::os::unix::fs::symlink("../usr/sbin", root.join("opt/sbin")).unwrap();
        std::os::unix::fs::symlink("/opt/loop", root.join("opt/loop")).unwrap();
        assert_eq!(resolve(&root, "/opt/runc"), Some(root.join("usr/sbin/runc")));
        assert_eq!(resolve(&root, "/opt/sbin/runc"), Some(root.join("usr/sbin/runc")));
        assert_eq!(resolve(&root, "/../../usr/sbin/runc"), Some(root.join("usr/sbin/runc")));
        assert_eq!(resolve(&root, "/opt/loop"), None);
        assert_eq!(resolve(&root, "/usr/bin/crun"), None);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
