//! `ig profile block-io`: the distribution of block I/O latency. Kernel
//! side: program.bpf.c (block_rq_issue/complete tracepoints, a per-CPU
//! histogram).

use super::top_blockio::BLOCK_ATTACHMENTS;
use crate::cli::CommonFlags;
use crate::profile::{Bucket, HistogramGadget, Whose};
use crate::session::{GadgetProgram, Session, SessionError, Variant};

crate::bpf_object!(profile_blockio);

/// Show the distribution of block I/O latency (issue to completion, in
/// microseconds) of the selected containers' requests, when stopped.
#[derive(Clone, Debug, clap::Args)]
pub struct ProfileBlockio {
    #[command(flatten)]
    pub common: CommonFlags,
}

const VARIANTS: &[Variant] = &[Variant::new("tracepoint", BLOCK_ATTACHMENTS)];

impl GadgetProgram for ProfileBlockio {
    fn object(&self) -> &'static [u8] {
        bpf::OBJECT
    }

    fn variants(&self) -> &'static [Variant] {
        VARIANTS
    }
}

impl HistogramGadget for ProfileBlockio {
    fn common(&self) -> &CommonFlags {
        &self.common
    }

    fn measure(&self) -> (&'static str, &'static str) {
        ("latency", "us")
    }

    fn collect(&self, session: &mut Session) -> Result<Vec<Bucket>, SessionError> {
        let sums = session.per_cpu_sums::<4>("latency_hist")?;
        Ok(sums
            .into_iter()
            .map(|(k, count)| Bucket {
                whose: Whose::Selected, // filtered at issue
                group: String::new(),
                index: u32::from_ne_bytes(k),
                count,
            })
            .collect())
    }
}
