//! The layer file behind a file of a container's overlay root.
//!
//! overlayfs shows every file of a mount with a device of its own (when
//! its layers share a filesystem), so one image's libssl looks like
//! another file in each of its containers; the kernel places a uprobe on
//! the file beneath, the layer's. Probes keyed by what the overlay shows
//! would be placed once per container (and run once per container on
//! every call). The layer is found from the mount's line in the
//! container's mountinfo (upperdir, lowerdir), and a file there is taken
//! only when its inode number is the one the overlay shows (overlayfs
//! passes it through from the layer); anything else is left to the
//! overlay's own identity, as before.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

/// The mount a directory is on, and whether it is that mount's root.
pub fn mount_of(dir: BorrowedFd<'_>) -> Option<(u64, bool)> {
    // SAFETY: all-zero is a valid statx buffer.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: an empty path with AT_EMPTY_PATH names the descriptor; stx
    // is a valid out-buffer of the size the kernel writes.
    let rc = unsafe {
        libc::statx(
            std::os::fd::AsRawFd::as_raw_fd(&dir),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_MNT_ID,
            &mut stx,
        )
    };
    if rc != 0 || stx.stx_mask & libc::STATX_MNT_ID == 0 {
        return None;
    }
    let root = stx.stx_attributes_mask & libc::STATX_ATTR_MOUNT_ROOT as u64 != 0
        && stx.stx_attributes & libc::STATX_ATTR_MOUNT_ROOT as u64 != 0;
    Some((stx.stx_mnt_id, root))
}

/// An overlay mount that is a container's root: its layers, topmost first.
pub struct OverlayRoot {
    pub mount_id: u64,
    layers: Vec<OwnedFd>,
}

impl OverlayRoot {
    /// `root` (the directory a root walk opened) as an overlay mount of
    /// `pid`'s mount namespace, when it is the root of one.
    pub fn of(host_root: &Path, pid: u32, root: BorrowedFd<'_>) -> Option<Self> {
        let fs = nix::sys::statfs::fstatfs(root).ok()?.filesystem_type();
        if fs != nix::sys::statfs::OVERLAYFS_SUPER_MAGIC {
            return None;
        }
        let (mount_id, is_mount_root) = mount_of(root)?;
        if !is_mount_root {
            return None;
        }
        let text = std::fs::read_to_string(host_root.join(format!("proc/{pid}/mountinfo"))).ok()?;
        let line = text.lines().find(|l| l.split(' ').next() == Some(mount_id.to_string().as_str()))?;
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let layers = layer_dirs(line)?
            .iter()
            .map(|dir| {
                // The runtime mounted it from the host's mount namespace.
                let path = host_root.join(dir.strip_prefix("/").unwrap_or(dir));
                nix::fcntl::open(&path, flags, Mode::empty()).ok()
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self { mount_id, layers })
    }

    /// The layer's file that `rel` (under the root) is, when its inode
    /// number and size are those the overlay shows for it: opened
    /// (O_PATH), with its device and inode. No symbolic link is followed
    /// in a layer: one there could lead into the host's files.
    pub fn layer_file(&self, rel: &Path, ino: u64, size: i64) -> Option<(OwnedFd, (u64, u64))> {
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
        for layer in &self.layers {
            let Ok(fd) = nix::fcntl::openat2(layer.as_fd(), rel, how) else { continue };
            // The topmost layer holding the name is what the overlay shows.
            let st = nix::sys::stat::fstat(fd.as_fd()).ok()?;
            let regular = nix::sys::stat::SFlag::from_bits_truncate(st.st_mode)
                & nix::sys::stat::SFlag::S_IFMT
                == nix::sys::stat::SFlag::S_IFREG;
            return (regular && st.st_ino == ino && st.st_size == size)
                .then_some((fd, (st.st_dev, st.st_ino)));
        }
        None
    }
}

/// An overlay mountinfo line's layer directories, upper first, then the
/// lower ones in order (data-only lower layers left out: they hold file
/// data, never the file a name shows). None for another filesystem.
fn layer_dirs(line: &str) -> Option<Vec<PathBuf>> {
    let (_, right) = line.split_once(" - ")?;
    let mut fields = right.split(' ');
    if fields.next()? != "overlay" {
        return None;
    }
    let options = fields.nth(1)?;
    let (mut upper, mut lower) = (None, Vec::new());
    for option in options.split(',') {
        if let Some(v) = option.strip_prefix("upperdir=") {
            upper = Some(unescape(v));
        } else if let Some(v) = option.strip_prefix("lowerdir=") {
            // "a:b::data": the layers, then after "::" the data-only ones.
            let metadata = v.split("::").next().unwrap_or_default();
            lower.extend(metadata.split(':').filter(|s| !s.is_empty()).map(unescape));
        } else if let Some(v) = option.strip_prefix("lowerdir+=") {
            lower.push(unescape(v));
        }
    }
    if lower.is_empty() {
        return None;
    }
    Some(upper.into_iter().chain(lower).collect())
}

/// mountinfo's octal escapes (`\040` for a space, `\054` a comma, `\072`
/// a colon) undone.
fn unescape(s: &str) -> PathBuf {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsStr::from_bytes(&out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overlay_lines_layers_upper_first_data_only_ones_left_out() {
        let line = "812 790 0:95 / / rw,relatime master:1 - overlay overlay rw,lowerdir=/l/a:/l/b\\072c::/l/data,upperdir=/u/d\\040e,workdir=/w,uuid=on";
        assert_eq!(
            layer_dirs(line).unwrap(),
            [PathBuf::from("/u/d e"), PathBuf::from("/l/a"), PathBuf::from("/l/b:c")]
        );
        let added = "9 8 0:5 / /m rw - overlay overlay ro,lowerdir+=/x,lowerdir+=/y,datadir+=/z";
        assert_eq!(layer_dirs(added).unwrap(), [PathBuf::from("/x"), PathBuf::from("/y")]);
        assert!(layer_dirs("36 35 98:0 / / rw - ext4 /dev/vda rw").is_none());
        assert!(layer_dirs("garbage").is_none());
        assert_eq!(unescape("a\\05b\\"), PathBuf::from("a\\05b\\"), "a short escape is kept as is");
    }
}
