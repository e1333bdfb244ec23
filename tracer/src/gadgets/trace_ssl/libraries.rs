//! The TLS libraries of one root filesystem: every libssl and libgnutls in
//! the directories a dynamic loader searches by default.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Which library, and so which functions carry its plaintext.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    OpenSsl,
    GnuTls,
}

impl Kind {
    /// A library file's kind by its name: `libssl.so.3`, `libgnutls.so.30`
    /// (not libgnutls-openssl, libgnutlsxx, libssl3.so: NSS's).
    fn of(file_name: &str) -> Option<Self> {
        if file_name.starts_with("libssl.so") {
            Some(Self::OpenSsl)
        } else if file_name.starts_with("libgnutls.so") {
            Some(Self::GnuTls)
        } else {
            None
        }
    }
}

/// One library file found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Library {
    /// Its path here (through the root).
    pub path: PathBuf,
    pub kind: Kind,
    /// Device and inode as seen here: one file reached twice is one library.
    pub id: (u64, u64),
}

/// Relative to a root. Where the loader looks without LD_LIBRARY_PATH, for
/// Debian/Ubuntu multiarch, RHEL/Amazon Linux lib64 and Alpine usr/lib.
const DIRS: &[&str] = &[
    "lib",
    "lib64",
    "usr/lib",
    "usr/lib64",
    "usr/local/lib",
    "usr/local/lib64",
    "lib/x86_64-linux-gnu",
    "usr/lib/x86_64-linux-gnu",
    "lib/aarch64-linux-gnu",
    "usr/lib/aarch64-linux-gnu",
];

/// The libraries under `root`. A directory reached through a symbolic link
/// is skipped (merged /usr makes lib a link to usr/lib, searched anyway): an
/// absolute link in a container's root would lead into the host's, and
/// only regular files are taken for the same reason.
pub fn find(root: &Path) -> Vec<Library> {
    let mut out: Vec<Library> = Vec::new();
    for dir in DIRS {
        if through_link(root, dir) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(kind) = name.to_str().and_then(Kind::of) else { continue };
            let Ok(meta) = entry.metadata() else { continue }; // not followed
            if !meta.is_file() {
                continue;
            }
            let id = (meta.dev(), meta.ino());
            if !out.iter().any(|l| l.id == id) {
                out.push(Library { path: entry.path(), kind, id });
            }
        }
    }
    out
}

/// Some component of `rel` under `root` is a symbolic link (or missing).
fn through_link(root: &Path, rel: &str) -> bool {
    let mut path = root.to_path_buf();
    for part in rel.split('/') {
        path.push(part);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_dir() => {}
            _ => return true,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_library_once_and_never_through_links() {
        let root = std::env::temp_dir().join(format!("ig-ssl-libs-{}", std::process::id()));
        let multi = root.join("usr/lib/x86_64-linux-gnu");
        std::fs::create_dir_all(&multi).unwrap();
        std::fs::create_dir_all(root.join("usr/lib64")).unwrap();
        std::fs::write(multi.join("libssl.so.3"), b"x").unwrap();
        std::fs::write(multi.join("libgnutls.so.30"), b"x").unwrap();
        std::fs::write(multi.join("libgnutls-openssl.so.27"), b"x").unwrap();
        std::fs::write(multi.join("libssl3.so"), b"x").unwrap();
        std::os::unix::fs::symlink("libssl.so.3", multi.join("libssl.so")).unwrap();
        std::fs::hard_link(multi.join("libssl.so.3"), root.join("usr/lib64/libssl.so.3")).unwrap();
        // merged /usr: lib is a link, and an absolute one leads out of the root
        std::os::unix::fs::symlink("/usr/lib", root.join("lib")).unwrap();
        let mut found = find(&root);
        found.sort_by(|a, b| a.path.cmp(&b.path));
        let names: Vec<_> =
            found.iter().map(|l| (l.path.strip_prefix(&root).unwrap().to_owned(), l.kind)).collect();
        assert_eq!(
            names,
            [
                (PathBuf::from("usr/lib/x86_64-linux-gnu/libgnutls.so.30"), Kind::GnuTls),
                (PathBuf::from("usr/lib64/libssl.so.3"), Kind::OpenSsl),
            ],
            "the hard link in the multiarch directory is the same file as lib64's, found once"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
