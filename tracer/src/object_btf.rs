//! Loading a gadget's object against its BTF subset (btf_subset.rs) rather
//! than the whole kernel BTF.
//!
//! aya 0.14's `EbpfLoader::new()` reads and parses /sys/kernel/btf/vmlinux
//! before anything can be configured (~20 MB and ~25 ms here). So the loader
//! runs on a thread of its own that first moves into a private mount
//! namespace (a thread may: CLONE_NEWNS only unshares its fs context) where
//! a tmpfs on /sys/kernel/btf holds the subset as `vmlinux`. The rest of ig,
//! and the host, keep seeing the real file; the namespace goes away with the
//! thread. Where that cannot be done (no CAP_SYS_ADMIN, a seccomp profile
//! refusing unshare), the loader reads the kernel's BTF as before.

use std::path::Path;

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};

use crate::btf_subset;

use crate::kernel::{KERNEL_BTF, KERNEL_BTF_DIR as BTF_DIR};

#[derive(Debug, thiserror::Error)]
enum PrivateBtfError {
    #[error("unshare(CLONE_NEWNS): {0}")]
    Unshare(nix::Error),
    #[error("making the thread's mounts private: {0}")]
    Private(nix::Error),
    #[error("mounting a tmpfs on {BTF_DIR}: {0}")]
    Tmpfs(nix::Error),
    #[error("writing the BTF subset: {0}")]
    Write(std::io::Error),
}

/// Runs `load` where the kernel BTF it sees is the subset `object` needs,
/// or the kernel's own when the subset cannot be made or put in place.
pub fn with_object_btf<T: Send>(object: &[u8], load: impl FnOnce() -> T + Send) -> T {
    let started = std::time::Instant::now();
    let cached = crate::btf_cache::path_for(object);
    let subset = match cached.as_deref().and_then(crate::btf_cache::read) {
        Some(subset) => {
            tracing::debug!(bytes = subset.len(), took = ?started.elapsed(), "BTF subset read from this boot's cache");
            subset
        }
        None => {
            let subset = match KernelBtf::open() {
                Ok(kernel) => subset_with_modules(kernel.bytes(), object),
                // aya will say the same when it tries: no need to say it twice.
                Err(_) => return load(),
            };
            let subset = match subset {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!("no BTF subset ({e}): loading against the whole kernel BTF");
                    return load();
                }
            };
            tracing::debug!(bytes = subset.len(), took = ?started.elapsed(), "BTF subset made");
            if let Some(path) = &cached {
                crate::btf_cache::write(path, &subset);
            }
            subset
        }
    };
    std::thread::scope(|scope| {
        let thread = scope.spawn(|| {
            if let Err(e) = private_btf(&subset) {
                tracing::debug!("{e}: loading against the whole kernel BTF");
            }
            load()
        });
        thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// The subset `object` needs, with the types it reads from a module (e.g.
/// overlayfs' `ovl_inode` where overlayfs is a module) taken from that
/// module's BTF: aya only reads vmlinux's. A type no loaded module has is
/// left out: the object's `bpf_core_type_exists` checks then see it missing.
fn subset_with_modules(kernel: &[u8], object: &[u8]) -> Result<Vec<u8>, btf_subset::BtfSubsetError> {
    let missing = btf_subset::roots_missing_from(kernel, object)?;
    if missing.is_empty() {
        return btf_subset::for_object(kernel, object);
    }
    let mut modules = Vec::new();
    if let Ok(entries) = std::fs::read_dir(BTF_DIR) {
        for entry in entries.flatten() {
            if entry.file_name() == "vmlinux" {
                continue;
            }
            let Ok(btf) = std::fs::read(entry.path()) else { continue };
            if btf_subset::module_defines(kernel, &btf, &missing).unwrap_or(false) {
                tracing::debug!(module = ?entry.file_name(), "types from the module's BTF");
                modules.push(btf);
            }
        }
    }
    if modules.is_empty() {
        let names: Vec<String> = missing.iter().map(|n| String::from_utf8_lossy(n).into_owned()).collect();
        tracing::debug!("not in the kernel's or a loaded module's BTF: {}", names.join(", "));
    }
    let views: Vec<&[u8]> = modules.iter().map(Vec::as_slice).collect();
    btf_subset::for_object_with_modules(kernel, &views, object)
}

#[derive(Debug, thiserror::Error)]
pub enum FunctionBtfError {
    #[error("reading {KERNEL_BTF}: {0}")]
    Read(std::io::Error),
    #[error("parsing {KERNEL_BTF}: {0}")]
    Parse(btf_subset::BtfSubsetError),
    #[error("no function {0} in the kernel's BTF (inlined or not built)")]
    NoFunction(&'static str),
    #[error("the BTF stand-in for {0}: {1}")]
    StandIn(&'static str, aya::BtfError),
}

/// What aya needs to load a program attached to the kernel function
/// `name` by BTF (fentry, fexit): a BTF holding it under the kernel's own
/// id (see [`btf_subset::function_stand_in`]), not the whole kernel BTF.
pub fn function_btf(name: &'static str) -> Result<aya::Btf, FunctionBtfError> {
    let kernel = KernelBtf::open().map_err(FunctionBtfError::Read)?;
    let id = btf_subset::function_id(kernel.bytes(), name)
        .map_err(FunctionBtfError::Parse)?
        .ok_or(FunctionBtfError::NoFunction(name))?;
    drop(kernel);
    aya::Btf::parse(&btf_subset::function_stand_in(name, id), aya::Endianness::default())
        .map_err(|e| FunctionBtfError::StandIn(name, e))
}

/// The kernel's BTF, mapped rather than read: sysfs hands it out a page per
/// read(2) (~1,300 calls, ~10 ms here), while a mapping of it (kernels from
/// 6.16) costs nothing until touched. Read on older kernels.
enum KernelBtf {
    Mapped { addr: std::ptr::NonNull<libc::c_void>, len: usize },
    Read(Vec<u8>),
}

impl KernelBtf {
    fn open() -> std::io::Result<Self> {
        let file = std::fs::File::open(KERNEL_BTF)?;
        let len = file.metadata()?.len() as usize;
        let Some(len) = std::num::NonZeroUsize::new(len) else { return Ok(Self::Read(Vec::new())) };
        // SAFETY: a private read-only mapping of a file that does not change
        // while the kernel runs; unmapped in Drop, and only read through bytes().
        let mapped = unsafe {
            nix::sys::mman::mmap(
                None,
                len,
                nix::sys::mman::ProtFlags::PROT_READ,
                nix::sys::mman::MapFlags::MAP_PRIVATE,
                &file,
                0,
            )
        };
        match mapped {
            Ok(addr) => Ok(Self::Mapped { addr, len: len.get() }),
            Err(_) => std::fs::read(KERNEL_BTF).map(Self::Read),
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            // SAFETY: the mapping is len bytes long and lives as long as self.
            Self::Mapped { addr, len } => unsafe {
                std::slice::from_raw_parts(addr.as_ptr().cast::<u8>(), *len)
            },
            Self::Read(v) => v,
        }
    }
}

impl Drop for KernelBtf {
    fn drop(&mut self) {
        if let Self::Mapped { addr, len } = self {
            // SAFETY: unmapping what open() mapped; no slice of it outlives self.
            let _ = unsafe { nix::sys::mman::munmap(*addr, *len) };
        }
    }
}

/// Moves the calling thread into a private mount namespace whose
/// /sys/kernel/btf/vmlinux is `btf`.
fn private_btf(btf: &[u8]) -> Result<(), PrivateBtfError> {
    unshare(CloneFlags::CLONE_NEWNS).map_err(PrivateBtfError::Unshare)?;
    // Without this the tmpfs below would propagate to the host's mounts.
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .map_err(PrivateBtfError::Private)?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("tmpfs"), BTF_DIR, Some("tmpfs"), flags, Some("mode=0700")).map_err(PrivateBtfError::Tmpfs)?;
    if let Err(e) = std::fs::write(Path::new(BTF_DIR).join("vmlinux"), btf) {
        // An empty /sys/kernel/btf would leave aya with no BTF at all: show
        // the kernel's again.
        let _ = nix::mount::umount2(BTF_DIR, nix::mount::MntFlags::MNT_DETACH);
        return Err(PrivateBtfError::Write(e));
    }
    Ok(())
}
