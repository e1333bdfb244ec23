//! The process filters every gadget takes (`--pid`, `--tid`, `--uid`,
//! `--gid`, `--comm`): load-time constants of the eBPF programs
//! (tracer/bpf/filter.h), checked in the kernel right after the container
//! filter, so what they leave out never reaches the ring buffer.

use aya::EbpfLoader;
use clap::Args;

/// The kernel keeps the first 15 bytes of a task's name (TASK_COMM_LEN 16).
const COMM_LEN: usize = 15;

#[derive(Clone, Debug, Default, PartialEq, Eq, Args)]
pub struct ProcessFlags {
    /// Only this process (its pid, the thread group id).
    #[arg(long)]
    pub pid: Option<u32>,

    /// Only this thread.
    #[arg(long)]
    pub tid: Option<u32>,

    /// Only processes of this user id.
    #[arg(long)]
    pub uid: Option<u32>,

    /// Only processes of this group id.
    #[arg(long)]
    pub gid: Option<u32>,

    /// Only processes of this name (the kernel's comm: its first 15 bytes count).
    #[arg(long, value_parser = parse_comm)]
    pub comm: Option<String>,
}

fn parse_comm(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("an empty name".into());
    }
    // What the kernel would have kept of it, cut on a character boundary.
    let mut end = s.len().min(COMM_LEN);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Ok(s[..end].to_string())
}

impl ProcessFlags {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// For what userspace filters itself (a process read from /proc).
    pub fn admits(&self, pid: u32, uid: u32, gid: u32, comm: &str) -> bool {
        self.pid.is_none_or(|p| p == pid)
            && self.uid.is_none_or(|u| u == uid)
            && self.gid.is_none_or(|g| g == gid)
            && self.comm.as_deref().is_none_or(|c| c == comm)
    }

    /// The values as the C globals hold them (the loader borrows them).
    pub fn globals(&self) -> ProcessGlobals {
        let mut comm = [0u8; COMM_LEN + 1];
        if let Some(c) = &self.comm {
            comm[..c.len()].copy_from_slice(c.as_bytes());
        }
        ProcessGlobals {
            pid: self.pid.unwrap_or(0),
            tid: self.tid.unwrap_or(0),
            uid_set: u8::from(self.uid.is_some()),
            uid: self.uid.unwrap_or(0),
            gid_set: u8::from(self.gid.is_some()),
            gid: self.gid.unwrap_or(0),
            comm_set: u8::from(self.comm.is_some()),
            comm,
        }
    }
}

/// [`ProcessFlags`] laid out as filter.h's globals.
#[derive(Clone, Debug)]
pub struct ProcessGlobals {
    pid: u32,
    tid: u32,
    uid_set: u8,
    uid: u32,
    gid_set: u8,
    gid: u32,
    comm_set: u8,
    comm: [u8; COMM_LEN + 1],
}

impl ProcessGlobals {
    /// Sets them in an object being loaded (every gadget's object has them:
    /// they come with filter.h).
    pub fn apply<'a>(&'a self, loader: &mut EbpfLoader<'a>) {
        loader
            .override_global("gadget_filter_pid", &self.pid, true)
            .override_global("gadget_filter_tid", &self.tid, true)
            .override_global("gadget_filter_uid_set", &self.uid_set, true)
            .override_global("gadget_filter_uid", &self.uid, true)
            .override_global("gadget_filter_gid_set", &self.gid_set, true)
            .override_global("gadget_filter_gid", &self.gid, true)
            .override_global("gadget_filter_comm_set", &self.comm_set, true)
            .override_global("gadget_filter_comm", &self.comm, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_cut_where_the_kernel_cuts_it() {
        assert_eq!(parse_comm("cat").unwrap(), "cat");
        assert_eq!(parse_comm("a-very-long-process-name").unwrap(), "a-very-long-pro");
        assert_eq!(parse_comm("ééééééééé").unwrap().len(), 14, "on a character boundary");
        assert!(parse_comm("").is_err());
    }

    #[test]
    fn globals_mark_what_is_set() {
        let flags = ProcessFlags { uid: Some(0), comm: Some("sh".into()), ..Default::default() };
        let g = flags.globals();
        assert_eq!((g.pid, g.uid_set, g.uid, g.gid_set, g.comm_set), (0, 1, 0, 0, 1));
        assert_eq!(&g.comm[..3], b"sh\0");
        assert!(ProcessFlags::default().is_empty() && !flags.is_empty());
    }
}
