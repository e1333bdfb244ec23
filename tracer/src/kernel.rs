//! Start-up checks of what the kernel and the process must provide, with
//! errors that say what is missing and how to fix it; and the mounts that
//! `--auto-mount-filesystems` makes.

use std::fs;
use std::path::Path;

use nix::mount::{MsFlags, mount};

/// Where the kernel's BTF lives; CO-RE relocations are resolved against it.
pub const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";
/// Where vmlinux's and the modules' BTF are.
pub const KERNEL_BTF_DIR: &str = "/sys/kernel/btf";
pub const TRACEFS: &str = "/sys/kernel/tracing";
pub const TRACEFS_LEGACY: &str = "/sys/kernel/debug/tracing";
const BPFFS: &str = "/sys/fs/bpf";
const DEBUGFS: &str = "/sys/kernel/debug";

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// What is wrong with the host for running gadgets.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("missing privileges: gadgets need CAP_SYS_ADMIN, or CAP_BPF and CAP_PERFMON (run as root)")]
    NotPrivileged,
    #[error("the kernel has no BTF ({KERNEL_BTF} is missing): it must be built with CONFIG_DEBUG_INFO_BTF=y")]
    NoBtf,
    #[error("{what} is not mounted at {path}: mount it, or pass --auto-mount-filesystems")]
    NotMounted { what: &'static str, path: &'static str },
    #[error("mounting {what} at {path}")]
    Mount {
        what: &'static str,
        path: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("reading {path}")]
    Read {
        path: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// Checks privileges, BTF, tracefs and bpffs; with `auto_mount`, mounts the
/// missing filesystems (and debugfs where the kernel has it) instead of failing.
pub fn check_host(auto_mount: bool) -> Result<(), KernelError> {
    check_privileges()?;
    if !Path::new(KERNEL_BTF).exists() {
        return Err(KernelError::NoBtf);
    }
    if auto_mount && !is_mounted_fs(DEBUGFS, "debugfs")? && Path::new(DEBUGFS).is_dir() {
        // debugfs is optional: only the legacy tracefs path lives in it.
        if let Err(e) = mount_fs("debugfs", DEBUGFS, "debugfs") {
            tracing::debug!(error = %e, cause = ?std::error::Error::source(&e), "debugfs not mounted");
        }
    }
    ensure_mounted("tracefs", TRACEFS, "tracefs", auto_mount, Some(TRACEFS_LEGACY))?;
    ensure_mounted("bpffs", BPFFS, "bpf", auto_mount, None)?;
    Ok(())
}

fn ensure_mounted(
    what: &'static str,
    path: &'static str,
    fstype: &'static str,
    auto_mount: bool,
    alternative: Option<&'static str>,
) -> Result<(), KernelError> {
    if is_mounted_fs(path, fstype)? {
        return Ok(());
    }
    if let Some(alt) = alternative
        && is_mounted_fs(alt, fstype)?
    {
        return Ok(());
    }
    if !auto_mount {
        return Err(KernelError::NotMounted { what, path });
    }
    mount_fs(what, path, fstype)
}

fn mount_fs(what: &'static str, path: &'static str, fstype: &'static str) -> Result<(), KernelError> {
    mount(Some(fstype), path, Some(fstype), MsFlags::empty(), None::<&str>)
        .map_err(|source| KernelError::Mount { what, path, source })?;
    tracing::info!("mounted {what} at {path}");
    Ok(())
}

/// True when a filesystem of type `fstype` is mounted exactly at `path`.
fn is_mounted_fs(path: &str, fstype: &str) -> Result<bool, KernelError> {
    let mounts = fs::read_to_string("/proc/self/mounts")
        .map_err(|source| KernelError::Read { path: "/proc/self/mounts", source })?;
    Ok(mounts_contain(&mounts, path, fstype))
}

fn mounts_contain(mounts: &str, path: &str, fstype: &str) -> bool {
    mounts.lines().any(|line| {
        let mut fields = line.split_whitespace();
        let (_src, target, ty) = (fields.next(), fields.next(), fields.next());
        target == Some(path) && ty == Some(fstype)
    })
}

/// Whether this process may load eBPF (CAP_SYS_ADMIN, or CAP_BPF with CAP_PERFMON).
pub fn has_privileges() -> bool {
    check_privileges().is_ok()
}

fn check_privileges() -> Result<(), KernelError> {
    let status = fs::read_to_string("/proc/self/status")
        .map_err(|source| KernelError::Read { path: "/proc/self/status", source })?;
    let caps = effective_caps(&status).unwrap_or(0);
    let has = |cap: u32| caps & (1u64 << cap) != 0;
    if has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)) {
        Ok(())
    } else {
        Err(KernelError::NotPrivileged)
    }
}

fn effective_caps(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line["CapEff:".len()..].trim(), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_effective_caps() {
        let status = "Name:\tig\nCapPrm:\t0000000000000000\nCapEff:\t000001fffeffffff\n";
        assert_eq!(effective_caps(status), Some(0x1fffeffffff));
        assert_eq!(effective_caps("Name: x\n"), None);
    }

    #[test]
    fn finds_mounts_by_target_and_type() {
        let mounts = "tracefs /sys/kernel/tracing tracefs rw 0 0\nbpf /sys/fs/bpf bpf rw 0 0\n";
        assert!(mounts_contain(mounts, TRACEFS, "tracefs"));
        assert!(mounts_contain(mounts, BPFFS, "bpf"));
        assert!(!mounts_contain(mounts, TRACEFS_LEGACY, "tracefs"));
        assert!(!mounts_contain("none /sys/fs/bpf tmpfs rw 0 0", BPFFS, "bpf"));
    }
}
