//! What a container's init process tells through /proc: its namespaces and
//! its cgroup. Paths are taken under a host root (`HOST_ROOT`), so the same
//! code works when ig runs in a container with the host at /host.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("reading {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ProcError + '_ {
    move |source| ProcError::Io { path: path.to_path_buf(), source }
}

/// Inode number of /proc/<pid>/ns/<kind>: the namespace id the kernel reports.
pub fn ns_inode(root: &Path, pid: u32, kind: &str) -> Result<u64, ProcError> {
    let path = root.join(format!("proc/{pid}/ns/{kind}"));
    // The link's text, "mnt:[4026531840]", names the inode: reading it
    // costs the kernel less than following it (a stat makes and frees a
    // dentry for the namespace each time; 1,000 of them at start-up).
    let link = std::fs::read_link(&path).map_err(io(&path))?;
    match ns_link_inode(link.as_os_str().as_encoded_bytes(), kind) {
        Some(ino) => Ok(ino),
        None => Ok(std::fs::metadata(&path).map_err(io(&path))?.ino()),
    }
}

/// All of `file` from where it is, appended to `buf`: read until end of
/// file. `read_to_end` asks a file's size and position first, two system
/// calls more, which procfs cannot answer anyway; for the small files read
/// per process or per container (/proc/PID/stat, the spool's records).
pub fn read_until_eof(file: &mut std::fs::File, buf: &mut Vec<u8>) -> std::io::Result<()> {
    use std::io::Read;
    let mut chunk = [0u8; 4096];
    loop {
        match file.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The inode number in a namespace link's text: `kind:[N]`.
pub fn ns_link_inode(link: &[u8], kind: &str) -> Option<u64> {
    let rest = link.strip_prefix(kind.as_bytes())?.strip_prefix(b":[")?.strip_suffix(b"]")?;
    std::str::from_utf8(rest).ok()?.parse().ok()
}

/// The cgroups of a process: the v2 path (`0::` line), and its directory and
/// id (the directory's inode) under the cgroup2 mount.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cgroups {
    /// Path inside the v2 hierarchy, e.g. `/kubepods/pod1/abc`.
    pub v2: String,
    /// Directory of that cgroup on the host, e.g. `/sys/fs/cgroup/unified/...`.
    pub v2_dir: String,
    /// Inode of `v2_dir`: the cgroup id BPF's bpf_get_current_cgroup_id sees.
    pub id: u64,
}

pub fn cgroups(root: &Path, pid: u32) -> Result<Cgroups, ProcError> {
    let path = root.join(format!("proc/{pid}/cgroup"));
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let v2 = parse_v2_cgroup(&text).unwrap_or_default();
    // cgroup2 is at /sys/fs/cgroup on unified hosts, /sys/fs/cgroup/unified on hybrid ones.
    for mount in ["sys/fs/cgroup/unified", "sys/fs/cgroup"] {
        let base = root.join(mount);
        if base.join("cgroup.controllers").exists() {
            let dir = base.join(v2.trim_start_matches('/'));
            let id = std::fs::metadata(&dir).map(|m| m.ino()).unwrap_or(0);
            let shown = Path::new("/").join(mount).join(v2.trim_start_matches('/'));
            return Ok(Cgroups { v2, v2_dir: shown.to_string_lossy().into_owned(), id });
        }
    }
    Ok(Cgroups { v2, ..Default::default() })
}

/// The path of the `0::` line of /proc/<pid>/cgroup.
pub fn parse_v2_cgroup(text: &str) -> Option<String> {
    text.lines().find_map(|l| l.strip_prefix("0::")).map(str::to_string)
}

/// What a container's record takes from its init process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessInfo {
    pub mntns: u64,
    pub netns: u64,
    /// The process shares the network namespace of pid 1.
    pub host_network: bool,
    pub cgroups: Cgroups,
}

pub fn process_info(root: &Path, pid: u32) -> Result<ProcessInfo, ProcError> {
    let mntns = ns_inode(root, pid, "mnt")?;
    let netns = ns_inode(root, pid, "net")?;
    let host_netns = ns_inode(root, 1, "net").unwrap_or(0);
    Ok(ProcessInfo { mntns, netns, host_network: netns == host_netns, cgroups: cgroups(root, pid)? })
}

/// The parent pid and comm of a process (from /proc/<pid>/stat).
pub fn parent_and_comm(root: &Path, pid: u32) -> Result<(u32, String), ProcError> {
    let path = root.join(format!("proc/{pid}/stat"));
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    Ok(parse_stat(&text).unwrap_or((0, String::new())))
}

/// `pid (comm) state ppid ...`: comm may hold spaces and parentheses.
pub fn parse_stat(text: &str) -> Option<(u32, String)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let ppid = text.get(close + 1..)?.split_whitespace().nth(1)?.parse().ok()?;
    Some((ppid, comm))
}

/// The NUL-separated command line of a process.
pub fn cmdline(root: &Path, pid: u32) -> Result<Vec<String>, ProcError> {
    let path = root.join(format!("proc/{pid}/cmdline"));
    let raw = std::fs::read(&path).map_err(io(&path))?;
    Ok(raw
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The link's number is the inode a stat of the namespace gives.
    #[test]
    fn a_namespace_links_text_names_its_inode() {
        let me = std::process::id();
        for kind in ["mnt", "net", "pid"] {
            let stat = std::fs::metadata(format!("/proc/{me}/ns/{kind}")).unwrap().ino();
            assert_eq!(ns_inode(Path::new("/"), me, kind).unwrap(), stat, "{kind}");
        }
        assert_eq!(ns_link_inode(b"mnt:[4026531840]", "mnt"), Some(4026531840));
        assert_eq!(ns_link_inode(b"net:[4026531840]", "mnt"), None);
        assert_eq!(ns_link_inode(b"mnt:[40265x]", "mnt"), None);
        assert_eq!(ns_link_inode(b"mnt:[4026531840", "mnt"), None);
    }

    #[test]
    fn parses_the_v2_line() {
        let text = "12:pids:/x\n1:name=systemd:/x\n0::/kubepods/pod1/abc\n";
        assert_eq!(parse_v2_cgroup(text).as_deref(), Some("/kubepods/pod1/abc"));
        assert_eq!(parse_v2_cgroup("1:cpu:/a\n"), None);
    }

    #[test]
    fn parses_stat_with_odd_comms() {
        assert_eq!(parse_stat("42 (a) b) c) S 7 42 42 0"), Some((7, "a) b) c".into())));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        let root = Path::new("/");
        assert!(ns_inode(root, me, "mnt").unwrap() > 0);
        let (ppid, _comm) = parent_and_comm(root, me).unwrap();
        assert!(ppid > 0);
        assert!(!cmdline(root, me).unwrap().is_empty());
    }
}
