//! The TLS libraries of one root filesystem: every libssl and libgnutls in
//! the directories a dynamic loader searches by default.
//!
//! Found root after root by one [`Finder`], which remembers what each
//! directory held: containers on one root filesystem (or on the host's)
//! cost a few `fstat`s each, not a listing of /usr/lib's thousands of
//! entries (0.5 ms a root on this host).

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag};

use super::overlay::{self, OverlayRoot};

/// Which library, and so which functions carry its plaintext.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    OpenSsl,
    GnuTls,
}

impl Kind {
    /// A library file's kind by its name: `libssl.so.3`, `libgnutls.so.30`
    /// (not libgnutls-openssl, libgnutlsxx, libssl3.so: NSS's).
    fn of(file_name: &[u8]) -> Option<Self> {
        if file_name.starts_with(b"libssl.so") {
            Some(Self::OpenSsl)
        } else if file_name.starts_with(b"libgnutls.so") {
            Some(Self::GnuTls)
        } else {
            None
        }
    }
}

/// One library file found.
#[derive(Debug)]
pub struct Library {
    /// Its path here (through the root).
    pub path: PathBuf,
    pub kind: Kind,
    /// Device and inode of the file itself: one file reached twice is one
    /// library. On an overlay root, the layer's file the overlay shows
    /// (where the kernel puts a uprobe), so containers of one image share it.
    pub id: (u64, u64),
    /// On an overlay root: the layer's file, opened (O_PATH), for
    /// [`Library::attach_path`].
    layer: Option<OwnedFd>,
}

impl Library {
    /// Where to attach probes: on an overlay root the layer's own file, so
    /// that probes shared by every container of an image keep no
    /// container's overlay alive after it is gone.
    pub fn attach_path(&self) -> PathBuf {
        match &self.layer {
            Some(fd) => PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())),
            None => self.path.clone(),
        }
    }
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

/// A directory as it was when listed: device, inode, and modification and
/// change times (adding, removing or renaming an entry changes both).
type DirKey = (u64, u64, i64, i64, i64, i64);

/// Directories remembered at most; past it the memory starts over (each
/// overlay root's directories are its own, so 1,000 containers make
/// thousands of keys that never match again).
const REMEMBERED_DIRS: usize = 1024;

/// Finds the libraries of root after root (see the module's comment).
#[derive(Default)]
pub struct Finder {
    /// The library names each directory held, with their kinds.
    listed: HashMap<DirKey, Vec<(Vec<u8>, Kind)>>,
}

impl Finder {
    /// The libraries under `root`. A directory reached through a symbolic
    /// link is skipped (merged /usr makes lib a link to usr/lib, searched
    /// anyway): an absolute link in a container's root would lead into the
    /// host's, and only regular files are taken for the same reason.
    /// `owner`: the host's root and the pid whose mount namespace `root`
    /// is in, to find an overlay root's layers (None for the host).
    pub fn find(&mut self, root: &Path, owner: Option<(&Path, u32)>) -> Vec<Library> {
        let mut out: Vec<Library> = Vec::new();
        let Ok(root_dir) =
            Dir::open(root, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        else {
            return out;
        };
        let layers = owner.and_then(|(host, pid)| OverlayRoot::of(host, pid, root_dir.as_fd()));
        let mut dirs = open_beneath(&root_dir);
        for rel in DIRS {
            let Some(Some(dir)) = dirs.get_mut(rel) else { continue };
            let Ok(st) = nix::sys::stat::fstat(dir.as_fd()) else { continue };
            let key = (st.st_dev, st.st_ino, st.st_mtime, st.st_mtime_nsec, st.st_ctime, st.st_ctime_nsec);
            if !self.listed.contains_key(&key) {
                if self.listed.len() >= REMEMBERED_DIRS {
                    self.listed.clear();
                }
                self.listed.insert(key, library_names(dir));
            }
            let mut on_layers = None;
            for (name, kind) in &self.listed[&key] {
                let name = std::ffi::OsStr::from_bytes(name);
                let Ok(meta) = nix::sys::stat::fstatat(dir.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW)
                else {
                    continue;
                };
                if SFlag::from_bits_truncate(meta.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
                    continue;
                }
                // On the root overlay's own mount (not one mounted onto it):
                // the layer's file, if it can be told for sure.
                let layers = layers.as_ref().filter(|l| {
                    *on_layers.get_or_insert_with(|| {
                        overlay::mount_of(dir.as_fd()).map(|m| m.0) == Some(l.mount_id)
                    })
                });
                let rel_name = Path::new(rel).join(name);
                let (id, layer) =
                    match layers.and_then(|l| l.layer_file(&rel_name, meta.st_ino, meta.st_size)) {
                        Some((fd, id)) => (id, Some(fd)),
                        None => ((meta.st_dev, meta.st_ino), None),
                    };
                if !out.iter().any(|l| l.id == id) {
                    out.push(Library { path: root.join(&rel_name), kind: *kind, id, layer });
                }
            }
        }
        out
    }
}

/// Every directory of [`DIRS`] under `root`, each component opened once,
/// relative to its parent, never through a symbolic link (O_NOFOLLOW):
/// None where a component is a link or missing.
fn open_beneath(root: &Dir) -> HashMap<&'static str, Option<Dir>> {
    let mut opened: HashMap<&'static str, Option<Dir>> = HashMap::new();
    for rel in DIRS {
        let ends = rel.match_indices('/').map(|(i, _)| i).chain([rel.len()]);
        for end in ends {
            let prefix: &'static str = &rel[..end];
            if opened.contains_key(prefix) {
                continue;
            }
            let (parent, name) = match prefix.rsplit_once('/') {
                Some((p, n)) => (opened.get(p).and_then(Option::as_ref), n),
                None => (Some(root), prefix),
            };
            let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let child = parent.and_then(|p| Dir::openat(p.as_fd(), name, flags, Mode::empty()).ok());
            opened.insert(prefix, child);
        }
    }
    opened
}

/// The names in `dir` that look like a TLS library.
fn library_names(dir: &mut Dir) -> Vec<(Vec<u8>, Kind)> {
    dir.iter()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_bytes();
            Kind::of(name).map(|k| (name.to_vec(), k))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(found: &[Library], root: &Path) -> Vec<(PathBuf, Kind)> {
        let mut names: Vec<_> =
            found.iter().map(|l| (l.path.strip_prefix(root).unwrap().to_owned(), l.kind)).collect();
        names.sort_by(|x, y| x.0.cmp(&y.0));
        names
    }

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
        let mut finder = Finder::default();
        let found = finder.find(&root, None);
        assert_eq!(
            names(&found, &root),
            [
                (PathBuf::from("usr/lib/x86_64-linux-gnu/libgnutls.so.30"), Kind::GnuTls),
                (PathBuf::from("usr/lib64/libssl.so.3"), Kind::OpenSsl),
            ],
            "the hard link in the multiarch directory is the same file as lib64's, found once"
        );
        // A second look, from the remembered listings, finds the same; a
        // library added since is found too (its directory changed).
        assert_eq!(names(&finder.find(&root, None), &root), names(&found, &root));
        std::fs::write(root.join("usr/lib64/libgnutls.so.28"), b"y").unwrap();
        assert_eq!(
            names(&finder.find(&root, None), &root),
            [
                (PathBuf::from("usr/lib/x86_64-linux-gnu/libgnutls.so.30"), Kind::GnuTls),
                (PathBuf::from("usr/lib64/libgnutls.so.28"), Kind::GnuTls),
                (PathBuf::from("usr/lib64/libssl.so.3"), Kind::OpenSsl),
            ]
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
