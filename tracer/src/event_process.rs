//! Who an event is about: `struct ig_process` (bpf/types.h), which every
//! event that names a task embeds as `process`. Decoded here once for every
//! gadget into [`Process`], whose fields are the event's `pid` `tid` `comm`
//! `uid` `gid` JSON keys (and `ppid` where the gadget fills it in), and
//! given the same columns everywhere.

use std::mem::offset_of;

use serde::Serialize;

use crate::bpf::{IG_TASK_COMM_LEN, ig_process as P};
use crate::event::Value;
use crate::gadgets::Column;
use crate::raw::Raw;

/// The task of an event (a socket's events: the socket's owner; zeros
/// when it is not known).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Process {
    pub pid: u32,
    pub tid: u32,
    /// Only for the gadgets that read it in the kernel (gadget_fill_parent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ppid: Option<u32>,
    pub comm: String,
    pub uid: u32,
    pub gid: u32,
}

impl Process {
    /// The `struct ig_process` at `at` (`offset_of!(Event, process)`);
    /// `r` must hold it (its header length covers the process).
    pub fn decode(r: &Raw, at: usize) -> Self {
        Self {
            pid: r.u32(at + offset_of!(P, pid)),
            tid: r.u32(at + offset_of!(P, tid)),
            ppid: None,
            comm: r.cstr(at + offset_of!(P, comm), IG_TASK_COMM_LEN as usize),
            uid: r.u32(at + offset_of!(P, uid)),
            gid: r.u32(at + offset_of!(P, gid)),
        }
    }

    /// [`Process::decode`] with the parent, for gadgets that fill it in.
    pub fn decode_with_parent(r: &Raw, at: usize) -> Self {
        Self { ppid: Some(r.u32(at + offset_of!(P, ppid))), ..Self::decode(r, at) }
    }

    /// The mount namespace the kernel recorded with the process.
    pub fn mntns(r: &Raw, at: usize) -> u64 {
        r.u64(at + offset_of!(P, mntns_id))
    }
}

/// Events that carry a [`Process`].
pub trait HasProcess {
    fn process(&self) -> &Process;
}

/// The process columns, the same in every gadget: each gadget places them
/// (and hides the ones it does not show by default).
pub mod columns {
    use super::*;

    pub fn pid<E: HasProcess>() -> Column<E> {
        Column::new("pid", 7, |e: &E| e.process().pid.into())
    }

    pub fn tid<E: HasProcess>() -> Column<E> {
        Column::new("tid", 7, |e: &E| e.process().tid.into())
    }

    pub fn ppid<E: HasProcess>() -> Column<E> {
        Column::new("ppid", 7, |e: &E| e.process().ppid.unwrap_or(0).into())
    }

    pub fn comm<E: HasProcess>() -> Column<E> {
        Column::new("comm", 16, |e: &E| Value::from(e.process().comm.as_str()))
    }

    pub fn uid<E: HasProcess>() -> Column<E> {
        Column::new("uid", 7, |e: &E| e.process().uid.into()).max(10)
    }

    pub fn gid<E: HasProcess>() -> Column<E> {
        Column::new("gid", 7, |e: &E| e.process().gid.into()).max(10)
    }

    /// The hidden `tid uid gid` most gadgets end with.
    pub fn hidden_ids<E: HasProcess>() -> [Column<E>; 3] {
        [tid().hidden(), uid().hidden(), gid().hidden()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_process(at: usize) -> Vec<u8> {
        let mut b = vec![0u8; at + std::mem::size_of::<P>()];
        let mut put = |off: usize, v: u32| b[at + off..][..4].copy_from_slice(&v.to_ne_bytes());
        put(offset_of!(P, pid), 10);
        put(offset_of!(P, tid), 11);
        put(offset_of!(P, ppid), 9);
        put(offset_of!(P, uid), 1000);
        put(offset_of!(P, gid), 100);
        b[at + offset_of!(P, mntns_id)..][..8].copy_from_slice(&4026531840u64.to_ne_bytes());
        b[at + offset_of!(P, comm)..][..4].copy_from_slice(b"sh\0x");
        b
    }

    #[test]
    fn a_process_decodes_where_the_event_embeds_it() {
        let bytes = raw_process(8);
        let r = Raw::new(&bytes, bytes.len()).expect("long enough");
        let p = Process::decode(&r, 8);
        assert_eq!(p, Process { pid: 10, tid: 11, ppid: None, comm: "sh".into(), uid: 1000, gid: 100 });
        assert_eq!(Process::decode_with_parent(&r, 8).ppid, Some(9));
        assert_eq!(Process::mntns(&r, 8), 4026531840);
    }

    #[test]
    fn ppid_is_a_json_key_only_where_the_gadget_fills_it() {
        let bytes = raw_process(0);
        let r = Raw::new(&bytes, bytes.len()).expect("long enough");
        let keys = |p: &Process| {
            let v = serde_json::to_value(p).expect("serializes");
            let mut k: Vec<String> = v.as_object().expect("an object").keys().cloned().collect();
            k.sort();
            k.join(" ")
        };
        assert_eq!(keys(&Process::decode(&r, 0)), "comm gid pid tid uid");
        assert_eq!(keys(&Process::decode_with_parent(&r, 0)), "comm gid pid ppid tid uid");
    }
}
