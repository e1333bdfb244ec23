//! BTF subsets made earlier in this boot, kept under /run/ig/btf.
//!
//! Cutting a gadget's subset walks the whole kernel BTF (~150k types, about
//! 10 ms, and a page-by-page read of it on kernels before 6.16): the largest
//! part of a gadget's start-up. The subset depends only on the object, the
//! running kernel and the module BTF loaded, so it is made once per boot
//! and read back after. The key hashes the object, the boot id (a kernel's
//! BTF cannot change while it runs) and the name and size of every BTF in
//! /sys/kernel/btf (a module loaded or reloaded since changes the key).
//! /run is a tmpfs: the cache goes with the boot. Where /run/ig cannot be
//! written, every run cuts its own subset, as before.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::kernel::KERNEL_BTF_DIR;

const CACHE_DIR: &str = "/run/ig/btf";
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

/// Where the subset of `object` for this boot and these modules is kept.
pub fn path_for(object: &[u8]) -> Option<PathBuf> {
    Some(Path::new(CACHE_DIR).join(format!("{:016x}.btf", key(object, &kernel_state()?))))
}

/// The boot id and each BTF file's name and size, sorted by name.
fn kernel_state() -> Option<(String, Vec<(std::ffi::OsString, u64)>)> {
    let boot_id = std::fs::read_to_string(BOOT_ID).ok()?.trim().to_string();
    let mut btf: Vec<_> = std::fs::read_dir(KERNEL_BTF_DIR)
        .ok()?
        .flatten()
        .map(|e| (e.file_name(), e.metadata().map_or(0, |m| m.len())))
        .collect();
    btf.sort();
    Some((boot_id, btf))
}

fn key(object: &[u8], (boot_id, btf): &(String, Vec<(std::ffi::OsString, u64)>)) -> u64 {
    // The std hasher with its fixed keys: the same in every run of one ig
    // build, which is all a per-boot cache needs.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    object.hash(&mut h);
    boot_id.hash(&mut h);
    btf.hash(&mut h);
    h.finish()
}

/// A subset kept earlier, if it is there and is BTF.
pub fn read(path: &Path) -> Option<Vec<u8>> {
    let bytes = std::fs::read(path).ok()?;
    crate::btf_subset::is_btf(&bytes).then_some(bytes)
}

/// Keeps `subset` for the next runs of this boot: written whole under a
/// temporary name, then renamed, so a reader never sees half of it.
pub fn write(path: &Path, subset: &[u8]) {
    let dir = path.parent().unwrap_or(Path::new(CACHE_DIR));
    let tmp = dir.join(format!(
        ".{}.{}",
        std::process::id(),
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    let result = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .and_then(|()| {
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
            f.write_all(subset)
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        tracing::debug!(path = %path.display(), "BTF subset not kept: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(boot: &str, btf: &[(&str, u64)]) -> (String, Vec<(std::ffi::OsString, u64)>) {
        (boot.into(), btf.iter().map(|(n, s)| (n.into(), *s)).collect())
    }

    #[test]
    fn the_key_changes_with_the_object_the_boot_and_the_modules() {
        let base = state("b1", &[("vmlinux", 100)]);
        let k = key(b"object", &base);
        assert_eq!(k, key(b"object", &base.clone()));
        assert_ne!(k, key(b"other", &base));
        assert_ne!(k, key(b"object", &state("b2", &[("vmlinux", 100)])));
        assert_ne!(k, key(b"object", &state("b1", &[("overlay", 10), ("vmlinux", 100)])));
        assert_ne!(k, key(b"object", &state("b1", &[("vmlinux", 101)])));
    }

    #[test]
    fn a_kept_subset_is_read_back_and_garbage_is_not() {
        let dir = std::env::temp_dir().join(format!("ig-btf-cache-test-{}", std::process::id()));
        let path = dir.join("k.btf");
        // The smallest BTF: a header and empty type and string sections.
        let mut btf = vec![0x9f, 0xeb, 1, 0, 24, 0, 0, 0];
        btf.extend([0u8; 16]);
        write(&path, &btf);
        assert_eq!(read(&path), Some(btf));
        std::fs::write(&path, b"not btf").unwrap();
        assert_eq!(read(&path), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
