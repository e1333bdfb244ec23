//! What /proc says about one process: /proc/PID/stat (the kernel's own
//! line: comm may hold spaces and parentheses, so fields are counted from
//! the last `)`), its owner, its mount namespace.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    pub comm: String,
    pub state: char,
    pub ppid: u32,
    /// Clock ticks in user and kernel mode, all threads.
    pub utime: u64,
    pub stime: u64,
    pub threads: u32,
    /// Clock ticks after boot when it started: tells a reused pid apart.
    pub starttime: u64,
    pub vsize: u64,
    pub rss_pages: u64,
    pub uid: u32,
    pub gid: u32,
}

/// Parses a stat line; the owner is filled in by [`read`].
pub fn parse(line: &str) -> Option<Stat> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    let comm = line.get(open + 1..close)?.to_string();
    // Fields from the 3rd (state) on.
    let f: Vec<&str> = line.get(close + 1..)?.split_whitespace().collect();
    let num = |i: usize| f.get(i - 3).and_then(|v| v.parse::<u64>().ok());
    Some(Stat {
        comm,
        state: f.first()?.chars().next()?,
        ppid: num(4)? as u32,
        utime: num(14)?,
        stime: num(15)?,
        threads: num(20)? as u32,
        starttime: num(22)?,
        vsize: num(23)?,
        rss_pages: num(24)?,
        uid: 0,
        gid: 0,
    })
}

pub fn read(proc_dir: &Path, pid: u32) -> Option<Stat> {
    let dir = proc_dir.join(pid.to_string());
    let mut st = parse(&stat_text(&dir)?)?;
    // The directory belongs to the process's effective ids.
    let meta = std::fs::metadata(&dir).ok()?;
    st.uid = meta.uid();
    st.gid = meta.gid();
    Some(st)
}

/// A process's stat line alone, for what needs only its times.
pub fn read_times(proc_dir: &Path, pid: u32) -> Option<Stat> {
    parse(&stat_text(&proc_dir.join(pid.to_string()))?)
}

/// `dir`/stat's text (see [`shared::procfs::read_until_eof`]).
fn stat_text(dir: &Path) -> Option<String> {
    let mut file = std::fs::File::open(dir.join("stat")).ok()?;
    let mut text = Vec::with_capacity(512);
    shared::procfs::read_until_eof(&mut file, &mut text).ok()?;
    String::from_utf8(text).ok()
}

/// Every process (not thread) of /proc.
pub fn pids(proc_dir: &Path) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir(proc_dir) else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect()
}

/// The inode of its mount namespace.
pub fn mntns(proc_dir: &Path, pid: u32) -> Option<u64> {
    let link = std::fs::read_link(proc_dir.join(format!("{pid}/ns/mnt"))).ok()?;
    shared::procfs::ns_link_inode(link.as_os_str().as_encoded_bytes(), "mnt")
}

/// MemTotal of /proc/meminfo, in bytes.
pub fn mem_total(proc_dir: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(proc_dir.join("meminfo")).ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf reads a constant of the system.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

pub fn page_size() -> u64 {
    // SAFETY: as above.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as u64 } else { 4096 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comm_with_spaces_and_parentheses_does_not_shift_the_fields() {
        let line = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 12345 10485760 640 18446744073709551615";
        let st = parse(line).unwrap();
        assert_eq!(st.comm, "a (b) c");
        assert_eq!((st.state, st.ppid, st.utime, st.stime), ('S', 1, 250, 75));
        assert_eq!((st.threads, st.starttime, st.vsize, st.rss_pages), (3, 12345, 10485760, 640));
        assert!(parse("garbage").is_none());
    }

    #[test]
    fn this_process_reads_as_itself() {
        let st = read(Path::new("/proc"), std::process::id()).unwrap();
        // Its main thread may be waiting for the test threads: R or S.
        assert!("RS".contains(st.state), "{st:?}");
        assert_eq!(st.ppid, std::os::unix::process::parent_id());
        assert!(st.threads >= 1 && st.rss_pages > 0);
        assert!(mntns(Path::new("/proc"), std::process::id()).is_some());
        assert!(mem_total(Path::new("/proc")).unwrap() > 0);
    }
}
