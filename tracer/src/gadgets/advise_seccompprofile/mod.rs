//! `ig advise seccomp-profile`: the seccomp profile each selected
//! container needs, from the syscalls it makes while the gadget runs.
//! Kernel side: program.bpf.c (raw tracepoint sys_enter, a set of syscall
//! numbers per mount namespace and CPU). Here: the sets read when stopped,
//! merged, named (syscalls.rs) and written as OCI seccomp profiles
//! (profile.rs).

pub mod profile;

use std::mem::{offset_of, size_of};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use crate::cli::CommonFlags;
use crate::event::EventCommon;
use crate::output::OutputMode;
use crate::profile::{ProfileGadget, Report};
use crate::raw::Raw;
use crate::run::RunOptions;
use crate::session::{Attachment, GadgetProgram, Session, Variant};
use profile::{SeccompProfile, SyscallSet};

crate::bpf_object!(advise_seccompprofile);

type V = bpf::ig_syscall_set;

/// Record the syscalls the selected containers make and, when stopped,
/// write a seccomp profile for each that allows exactly those.
///
/// The profiles are in the OCI (docker, podman, CRI-O, Kubernetes
/// localhost profile) JSON format: SCMP_ACT_ERRNO for every syscall not
/// seen. A container's syscalls count from the moment its record reaches
/// ig (with ig-hook or NRI: before its own process starts), so run the
/// gadget first, then start the workload, and exercise it fully: a code
/// path it did not take is not allowed. Profiles cover x86-64 code; calls
/// of 32-bit code are counted and reported, not named.
#[derive(Clone, Debug, clap::Args)]
pub struct AdviseSeccompProfile {
    #[command(flatten)]
    pub common: CommonFlags,

    /// Write each container's profile to DIR/<container name>.json
    /// instead of standard output (through gadgetctl: on the node, as
    /// --output-file).
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
}

const ATTACHMENTS: &[Attachment] = &[Attachment::raw("ig_sys_enter", "sys_enter")];
const VARIANTS: &[Variant] = &[Variant::new("raw tracepoint", ATTACHMENTS)];

impl GadgetProgram for AdviseSeccompProfile {
    fn object(&self) -> &'static [u8] {
        &bpf::OBJECT
    }

    fn variants(&self) -> &'static [Variant] {
        VARIANTS
    }
}

/// One container's advice: who, and its profile.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Advice {
    #[serde(flatten)]
    pub common: EventCommon,
    pub profile: SeccompProfile,
}

crate::impl_has_common!(Advice);

/// What the kernel recorded for one mount namespace, over all CPUs.
struct Recorded {
    mntns: u64,
    set: SyscallSet,
    compat_calls: u64,
    unrecorded_calls: u64,
}

fn recorded(session: &mut Session) -> anyhow::Result<Vec<Recorded>> {
    let entries = session.per_cpu_values::<8, { size_of::<V>() }>("syscalls_used")?;
    Ok(entries
        .into_iter()
        .map(|(key, per_cpu)| {
            let mut r = Recorded {
                mntns: u64::from_ne_bytes(key),
                set: SyscallSet::default(),
                compat_calls: 0,
                unrecorded_calls: 0,
            };
            for value in &per_cpu {
                let Ok(v) = Raw::new(value, size_of::<V>()) else { continue };
                for w in 0..profile::WORDS {
                    r.set.add_word(w, v.u64(offset_of!(V, words) + 8 * w));
                }
                r.compat_calls += v.u64(offset_of!(V, compat_calls));
                r.unrecorded_calls += v.u64(offset_of!(V, unrecorded_calls));
            }
            r
        })
        .collect())
}

/// A file name for a container's profile: its name with what a path
/// cannot hold replaced; a host namespace by its number.
fn file_name(advice: &Advice) -> String {
    let name = &advice.common.runtime().container_name;
    if name.is_empty() {
        return format!("mntns-{}.json", advice.common.mntns);
    }
    let safe: String = name.chars().map(|c| if c == '/' || c.is_control() { '_' } else { c }).collect();
    match safe.as_str() {
        "." | ".." => format!("_{safe}.json"),
        _ => format!("{safe}.json"),
    }
}

/// Who an advice is for, as a user reads it.
fn whose(advice: &Advice) -> String {
    let name = &advice.common.runtime().container_name;
    if name.is_empty() {
        format!("mount namespace {}", advice.common.mntns)
    } else {
        format!("container {name}")
    }
}

fn write_file(dir: &Path, advice: &Advice) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(file_name(advice));
    let mut text = serde_json::to_vec_pretty(&advice.profile)?;
    text.push(b'\n');
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

impl ProfileGadget for AdviseSeccompProfile {
    fn common(&self) -> &CommonFlags {
        &self.common
    }

    fn check(&self, opts: &RunOptions) -> anyhow::Result<()> {
        anyhow::ensure!(opts.filters.is_empty(), "-F: a seccomp profile has no rows to filter");
        opts.output.refuse_folded()?;
        if let OutputMode::Columns(Some(_)) = &opts.output {
            anyhow::bail!("-o columns=...: a seccomp profile has no columns (try -o json)");
        }
        Ok(())
    }

    fn report(&self, session: &mut Session, r: Report<'_, '_>) -> anyhow::Result<()> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let lost = session.lost();
        let mut advices = Vec::new();
        for rec in recorded(session).context("reading the recorded syscalls")? {
            let (profile, unnamed) = SeccompProfile::allowing(&rec.set);
            let common = EventCommon {
                container: r.container(rec.mntns),
                timestamp: now,
                mntns: rec.mntns,
                names: None,
            };
            let advice = Advice { common, profile };
            let who = whose(&advice);
            if !unnamed.is_empty() {
                writeln!(
                    r.err,
                    "WARN: {who}: syscall numbers with no name here, not in its profile: {unnamed:?}"
                )?;
            }
            if rec.compat_calls > 0 {
                writeln!(
                    r.err,
                    "WARN: {who}: {} syscalls of 32-bit code, not in its profile (it covers x86-64)",
                    rec.compat_calls
                )?;
            }
            if rec.unrecorded_calls > 0 {
                writeln!(
                    r.err,
                    "WARN: {who}: {} syscalls numbered past the x86-64 table (x32, or invalid), not in its profile",
                    rec.unrecorded_calls
                )?;
            }
            advices.push(advice);
        }
        advices.sort_by_key(whose);
        tracing::info!(containers = advices.len(), "tracing stopped");
        if lost > 0 {
            writeln!(
                r.err,
                "WARN: the syscalls of {lost} mount namespaces were lost: the kernel's map was full; their profiles are missing"
            )?;
        }
        if advices.is_empty() {
            writeln!(r.err, "ig: no syscalls recorded: no selected container ran while measuring")?;
        }
        let mut out = r.out;
        for advice in &advices {
            let n = advice.profile.allowed();
            if let Some(dir) = &self.output_dir {
                let path = write_file(dir, advice)?;
                writeln!(
                    r.err,
                    "ig: {}: {n} syscalls, profile written to {}",
                    whose(advice),
                    path.display()
                )?;
                continue;
            }
            match r.opts.output.structured() {
                Some(style) => style.write(&mut out, advice)?,
                None => {
                    // The profile alone on standard output, so that it can
                    // be redirected to a file a runtime reads.
                    writeln!(r.err, "ig: {}: {n} syscalls", whose(advice))?;
                    serde_json::to_writer_pretty(&mut out, &advice.profile)?;
                    writeln!(out)?;
                }
            }
        }
        out.flush()?;
        Ok(())
    }
}
