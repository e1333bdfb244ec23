//! `ig snapshot process`: the processes (or threads) that exist now, as one
//! table. Kernel side: program.bpf.c, a BPF task iterator:
//! the kernel walks its task list and the program writes one record per
//! task, filtered by mount namespace in the kernel.

use std::io::Read;
use std::mem::size_of;

use self::bpf::OBJECT;
use crate::bpf::ig_process as E;
use crate::bpf::{FILTER_BY_MNTNS, MNTNS_FILTER_MAP};
use aya::EbpfLoader;
use aya::programs::Iter;
use serde::Serialize;

use super::{Column, container_columns};
use crate::cli::CommonFlags;
use crate::event::EventCommon;
use crate::event_process::{self as process, Process};
use crate::raw::Raw;
use crate::snapshot::{Scope, SnapshotGadget};

crate::bpf_object!(snapshot_process);

/// List the processes running now.
#[derive(Clone, Debug, clap::Args)]
pub struct SnapshotProcess {
    #[command(flatten)]
    pub common: CommonFlags,

    /// List every thread (adds the TID and PPID columns).
    #[arg(long)]
    pub threads: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct ProcessEntry {
    #[serde(flatten)]
    pub common: EventCommon,
    /// A whole record of the iterator.
    #[serde(flatten)]
    pub process: Process,
}

crate::impl_has_common!(with_process: ProcessEntry);

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("finding the task iterator in the kernel's BTF")]
    Btf(#[source] crate::object_btf::FunctionBtfError),
    #[error("loading the task iterator")]
    Load(#[source] Box<aya::EbpfError>),
    #[error("setting up the task iterator")]
    Program(#[source] Box<aya::programs::ProgramError>),
    #[error("the mount namespace filter map")]
    Map(#[source] Box<aya::maps::MapError>),
    #[error("opening the iterator's output")]
    Link(#[source] Box<aya::programs::links::LinkError>),
    #[error("reading the iterator's output")]
    Read(#[source] std::io::Error),
}

impl SnapshotGadget for SnapshotProcess {
    type Entry = ProcessEntry;

    fn common(&self) -> &CommonFlags {
        &self.common
    }

    fn columns(&self) -> Vec<Column<ProcessEntry>> {
        let mut cols = container_columns();
        cols.extend([
            process::columns::comm(),
            process::columns::pid(),
            process::columns::tid(),
            process::columns::uid(),
            process::columns::gid(),
            process::columns::ppid(),
        ]);
        // TID and PPID are shown with --threads.
        let n = cols.len();
        cols[n - 4].visible = self.threads;
        cols[n - 1].visible = self.threads;
        cols
    }

    /// A walk restricted to no mount namespace: loads, attaches and runs
    /// the iterator, which then returns nothing.
    fn probe(&self) -> anyhow::Result<&'static str> {
        self.take(Some(&[]))?;
        Ok("iterator")
    }

    fn entries(&self, scope: &Scope<'_>) -> anyhow::Result<Vec<ProcessEntry>> {
        let selected: Vec<u64> = scope.selected.iter().map(|r| r.mntns).collect();
        let mut entries = self.take(scope.containers_only.then_some(selected.as_slice()))?;
        entries.retain(|e| !scope.unselected_mntns.contains(&e.common.mntns));
        Ok(entries)
    }
}

impl SnapshotProcess {
    /// Walks the tasks once. With `mntns` Some, only tasks in those mount
    /// namespaces (filtered in the kernel); with None, every task.
    pub fn take(&self, mntns: Option<&[u64]>) -> Result<Vec<ProcessEntry>, SnapshotError> {
        let filter = u8::from(mntns.is_some());
        let threads = u8::from(self.threads);
        let process = self.common.process.globals();
        crate::session::raise_memlock_limit();
        // Against the object's BTF subset, as every gadget (object_btf.rs).
        let mut bpf = crate::object_btf::with_object_btf(&OBJECT, || {
            let mut loader = EbpfLoader::new();
            process.apply(&mut loader);
            loader
                .override_global(FILTER_BY_MNTNS, &filter, true)
                .override_global("gadget_threads", &threads, true)
                .load(&OBJECT)
        })
        .map_err(|e| SnapshotError::Load(Box::new(e)))?;
        if let Some(ids) = mntns {
            let map = bpf.map_mut(MNTNS_FILTER_MAP).expect("the object has the filter map");
            let mut map: aya::maps::HashMap<_, u64, u8> =
                aya::maps::HashMap::try_from(map).map_err(|e| SnapshotError::Map(Box::new(e)))?;
            for id in ids {
                map.insert(id, 1, 0).map_err(|e| SnapshotError::Map(Box::new(e)))?;
            }
        }
        // The iterator's target by the kernel's id, without the kernel's BTF parsed.
        let btf = crate::object_btf::function_btf("bpf_iter_task").map_err(SnapshotError::Btf)?;
        let prog: &mut Iter = bpf
            .program_mut("ig_snapshot_task")
            .expect("the object has the iterator")
            .try_into()
            .map_err(|e| SnapshotError::Program(Box::new(e)))?;
        prog.load("task", &btf).map_err(|e| SnapshotError::Program(Box::new(e)))?;
        let link = prog.attach().map_err(|e| SnapshotError::Program(Box::new(e)))?;
        let link = prog.take_link(link).map_err(|e| SnapshotError::Program(Box::new(e)))?;
        let mut file = link.into_file().map_err(|e| SnapshotError::Link(Box::new(e)))?;
        // Read in large chunks: a read smaller than a record makes the
        // iterator drop that record (read_to_end starts with a 32-byte probe).
        let mut out = Vec::new();
        let mut chunk = vec![0u8; 256 * size_of::<E>()];
        loop {
            let n = file.read(&mut chunk).map_err(SnapshotError::Read)?;
            if n == 0 {
                break;
            }
            out.extend_from_slice(&chunk[..n]);
        }
        let mut entries: Vec<ProcessEntry> = out.chunks_exact(size_of::<E>()).map(decode).collect();
        entries.sort_by_key(|e| (e.process.pid, e.process.tid));
        Ok(entries)
    }
}

fn decode(bytes: &[u8]) -> ProcessEntry {
    let r = Raw(bytes);
    ProcessEntry {
        common: EventCommon { mntns: Process::mntns(&r, 0), ..Default::default() },
        process: Process::decode_with_parent(&r, 0),
    }
}
