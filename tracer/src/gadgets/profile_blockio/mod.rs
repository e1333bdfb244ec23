//! `ig profile block-io`: the distribution of block I/O latency. Kernel
//! side: program.bpf.c (block_rq_issue/complete tracepoints, a per-CPU
//! histogram).

use std::mem::offset_of;

use super::top_blockio::BLOCK_ATTACHMENTS;
use crate::cli::CommonFlags;
use crate::profile::{Bucket, GroupLabel, HistogramGadget, Whose};
use crate::session::{GadgetProgram, Global, Session, SessionError, Variant};

crate::bpf_object!(profile_blockio);

/// Show the distribution of block I/O latency (issue to completion, in
/// microseconds) of the selected containers' requests, when stopped.
#[derive(Clone, Debug, clap::Args)]
pub struct ProfileBlockio {
    #[command(flatten)]
    pub common: CommonFlags,

    /// One histogram per block device (`disk` in JSON), by its name.
    #[arg(short = 'D', long)]
    pub per_disk: bool,
}

const VARIANTS: &[Variant] = &[Variant::new("tracepoint", BLOCK_ATTACHMENTS)];

impl GadgetProgram for ProfileBlockio {
    fn object(&self) -> &'static [u8] {
        &bpf::OBJECT
    }

    fn variants(&self) -> &'static [Variant] {
        VARIANTS
    }

    fn globals(&self) -> Vec<(&'static str, Global)> {
        vec![("gadget_per_disk", Global::Bool(self.per_disk))]
    }
}

/// A device's name from the kernel's dev_t (major << 20 | minor): its
/// DEVNAME in sysfs (`sda`, `loop3`), else `major:minor`.
pub fn disk_name(dev: u32) -> String {
    let (major, minor) = (dev >> 20, dev & 0xf_ffff);
    std::fs::read_to_string(format!("/sys/dev/block/{major}:{minor}/uevent"))
        .ok()
        .and_then(|u| u.lines().find_map(|l| l.strip_prefix("DEVNAME=").map(String::from)))
        .unwrap_or_else(|| format!("{major}:{minor}"))
}

impl HistogramGadget for ProfileBlockio {
    fn common(&self) -> &CommonFlags {
        &self.common
    }

    fn measure(&self) -> (&'static str, &'static str) {
        ("latency", "us")
    }

    fn group_label(&self) -> GroupLabel {
        GroupLabel::Disk
    }

    fn collect(&self, session: &mut Session) -> Result<Vec<Bucket>, SessionError> {
        let sums = session.per_cpu_sums::<8>("latency_hist")?;
        let mut names = std::collections::HashMap::new();
        Ok(sums
            .into_iter()
            .map(|(k, count)| {
                let field = |off: usize| u32::from_ne_bytes([k[off], k[off + 1], k[off + 2], k[off + 3]]);
                let dev = field(offset_of!(bpf::ig_blockio_hist_key, dev));
                Bucket {
                    whose: Whose::Selected, // filtered at issue
                    // Without --per-disk every key has device 0: one histogram.
                    group: if self.per_disk {
                        names.entry(dev).or_insert_with(|| disk_name(dev)).clone()
                    } else {
                        String::new()
                    },
                    index: field(offset_of!(bpf::ig_blockio_hist_key, bucket)),
                    count,
                }
            })
            .collect())
    }
}
