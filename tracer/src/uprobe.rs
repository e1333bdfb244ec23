//! Attaching a loaded uprobe program to a function of one library file.
//!
//! Through the kernel's `uprobe` perf event source: the probe is named by a
//! path and a file offset, and sits on that file's inode, so every process
//! mapping the file (in any container) runs it. A path under
//! `/proc/<pid>/root` reaches a container's own files. Done here rather
//! than through aya's `UProbe::attach`: a gadget attaches as containers come
//! (from the collection's callback), holding only the program's descriptor,
//! not the session that owns the program.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use object::{Object, ObjectSegment, ObjectSymbol, SymbolKind};

const UPROBE_SOURCE: &str = "/sys/bus/event_source/devices/uprobe";
/// perf_event_open(2) flag: the descriptor is close-on-exec.
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;
/// `_IO('$', 0)`.
const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
/// `_IOW('$', 8, __u32)`.
const PERF_EVENT_IOC_SET_BPF: libc::c_ulong = 0x4004_2408;

#[derive(Debug, thiserror::Error)]
pub enum UprobeError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: not an ELF file the probes can be placed in: {reason}")]
    Elf { path: PathBuf, reason: String },
    #[error("the kernel's uprobe event source ({UPROBE_SOURCE}): {0}")]
    Source(String),
    #[error("placing a uprobe on {path} at {offset:#x}: {source}")]
    Attach { path: PathBuf, offset: u64, source: std::io::Error },
}

/// The kernel can place uprobes through perf events (CONFIG_UPROBE_EVENTS).
pub fn supported() -> bool {
    Path::new(UPROBE_SOURCE).join("type").exists()
}

/// An attached probe: closing it detaches the program.
#[derive(Debug)]
pub struct UprobeLink(#[allow(dead_code)] OwnedFd);

/// The file offset of each of `names` that `path` defines as a function in
/// its dynamic symbol table (what a shared library exports); names it does
/// not define are left out.
pub fn function_offsets(
    path: &Path,
    names: &[&'static str],
) -> Result<HashMap<&'static str, u64>, UprobeError> {
    let data = std::fs::read(path).map_err(|source| UprobeError::Read { path: path.into(), source })?;
    let elf = |reason: String| UprobeError::Elf { path: path.into(), reason };
    let file = object::File::parse(&*data).map_err(|e| elf(e.to_string()))?;
    let mut out = HashMap::new();
    for sym in file.dynamic_symbols() {
        if !sym.is_definition() || sym.kind() != SymbolKind::Text {
            continue;
        }
        let Some(&name) = sym.name().ok().and_then(|n| names.iter().find(|&&w| w == n)) else {
            continue;
        };
        // A symbol's value is its address once loaded; the probe wants
        // where it is in the file: through the segment that holds it.
        let addr = sym.address();
        let offset = file.segments().find_map(|seg| {
            let (start, size) = (seg.address(), seg.size());
            (addr >= start && addr < start + size).then(|| seg.file_range().0 + (addr - start))
        });
        match offset {
            Some(offset) => {
                out.entry(name).or_insert(offset);
            }
            None => return Err(elf(format!("{name} at {addr:#x} lies in no loadable segment"))),
        }
    }
    Ok(out)
}

/// The perf event type of uprobes and the config bit that makes one a
/// return probe, as this kernel numbers them.
fn uprobe_source() -> Result<(u32, u32), UprobeError> {
    let read = |name: &str| {
        std::fs::read_to_string(Path::new(UPROBE_SOURCE).join(name))
            .map_err(|e| UprobeError::Source(format!("{name}: {e}")))
    };
    let kind = read("type")?;
    let kind = kind.trim().parse().map_err(|_| UprobeError::Source(format!("type {kind:?}")))?;
    // "config:0"
    let bit = read("format/retprobe")?;
    let bit = bit
        .trim()
        .strip_prefix("config:")
        .and_then(|b| b.parse().ok())
        .filter(|&b: &u32| b < 64)
        .ok_or_else(|| UprobeError::Source(format!("format/retprobe {bit:?}")))?;
    Ok((kind, bit))
}

/// The first fields of `struct perf_event_attr` (PERF_ATTR_SIZE_VER1),
/// all a probe named by path and offset uses.
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    /// uprobe_path: a pointer to the path.
    config1: u64,
    /// probe_offset: the offset in the file.
    config2: u64,
}

/// Runs `prog` (a loaded uprobe program) at `offset` of `path`, on entry
/// or, with `ret`, on return, in every process that maps the file.
pub fn attach(prog: BorrowedFd<'_>, path: &Path, offset: u64, ret: bool) -> Result<UprobeLink, UprobeError> {
    let (kind, ret_bit) = uprobe_source()?;
    let attach_error = |source| UprobeError::Attach { path: path.into(), offset, source };
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| attach_error(std::io::Error::from(std::io::ErrorKind::InvalidInput)))?;
    let attr = PerfEventAttr {
        kind,
        size: std::mem::size_of::<PerfEventAttr>() as u32,
        config: if ret { 1 << ret_bit } else { 0 },
        config1: c_path.as_ptr() as u64,
        config2: offset,
        ..Default::default()
    };
    // SAFETY: attr is a valid perf_event_attr prefix whose size field says
    // how much of it there is; c_path outlives the call. pid -1 with cpu 0:
    // every process (a uprobe event is not bound to the CPU it names).
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const PerfEventAttr,
            -1 as libc::pid_t,
            0 as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(attach_error(std::io::Error::last_os_error()));
    }
    // SAFETY: a descriptor the kernel just gave us, owned from here on.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // SAFETY: both ioctls take a plain integer argument.
    if unsafe { libc::ioctl(fd.as_raw_fd(), PERF_EVENT_IOC_SET_BPF, prog.as_raw_fd()) } != 0
        || unsafe { libc::ioctl(fd.as_raw_fd(), PERF_EVENT_IOC_ENABLE, 0) } != 0
    {
        return Err(attach_error(std::io::Error::last_os_error()));
    }
    Ok(UprobeLink(fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The libc a dynamic program on this host loads (ig itself is static).
    fn libc_path() -> PathBuf {
        let out = std::process::Command::new("ldd").arg("/bin/sh").output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split("=> ").nth(1)?.split(" (").next().map(PathBuf::from))
            .find(|p| p.to_string_lossy().contains("libc.so"))
            .expect("/bin/sh loads a libc")
    }

    /// Where the probes really fire is what tests/tests/trace_ssl.rs shows;
    /// here: each function is found, in the file's executable bytes, and a
    /// name the file lacks is not.
    #[test]
    fn offsets_fall_in_the_files_code_and_missing_names_are_left_out() {
        let path = libc_path();
        let found = function_offsets(&path, &["getpid", "write", "no_such_function_here"]).unwrap();
        assert!(!found.contains_key("no_such_function_here"));
        assert_ne!(found["getpid"], found["write"]);
        let data = std::fs::read(&path).unwrap();
        let file = object::File::parse(&*data).unwrap();
        for (name, offset) in &found {
            let in_code = file.segments().any(|seg| {
                let (start, size) = seg.file_range();
                let exec = matches!(seg.flags(), object::SegmentFlags::Elf { p_flags } if p_flags & object::elf::PF_X != 0);
                exec && (start..start + size).contains(offset)
            });
            assert!(in_code, "{name} at {offset:#x} of {} is not in its code", path.display());
        }
    }

    #[test]
    fn a_file_that_is_not_elf_is_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("ig-uprobe-{}", std::process::id()));
        std::fs::write(&dir, b"not an ELF file").unwrap();
        let e = function_offsets(&dir, &["SSL_read"]).unwrap_err().to_string();
        std::fs::remove_file(&dir).unwrap();
        assert!(e.contains("not an ELF file"), "{e}");
    }
}
