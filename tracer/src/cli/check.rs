//! `ig check`: for the running kernel, every gadget of the registry with the
//! variant it runs as (each is really loaded and attached, then detached),
//! or the one line that says why it cannot run here.

use std::io::Write;

use clap::Args;
use serde::Serialize;

use crate::gadgets::GadgetName;
use crate::kernel_info::KernelInfo;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Output: columns or json.
    #[arg(short = 'o', long = "output", default_value = "columns", value_parser = ["columns", "json"])]
    pub output: String,
}

/// One gadget's result.
#[derive(Clone, Debug, Serialize)]
pub struct GadgetCheck {
    /// `trace exec`.
    pub gadget: String,
    pub ok: bool,
    /// How it runs here: "tracepoint", "kprobe", "iterator", ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Why it cannot run here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub kernel: KernelInfo,
    pub gadgets: Vec<GadgetCheck>,
}

impl CheckArgs {
    pub fn run(&self) -> anyhow::Result<()> {
        let report = Report { kernel: KernelInfo::probe(), gadgets: check_all() };
        let mut out = std::io::stdout().lock();
        if self.output == "json" {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        } else {
            let k = &report.kernel;
            writeln!(out, "kernel {} ({})", k.release, k.summary())?;
            writeln!(out, "{:<22} {:<6} VARIANT / REASON", "GADGET", "STATUS")?;
            for g in &report.gadgets {
                let (status, what) = match (&g.variant, &g.error) {
                    (Some(v), _) => ("ok", v.as_str()),
                    (None, Some(e)) => ("no", e.as_str()),
                    (None, None) => ("no", ""),
                };
                writeln!(out, "{:<22} {status:<6} {what}", g.gadget)?;
            }
        }
        out.flush()?;
        Ok(())
    }
}

/// Loads and attaches every gadget with its default flags, one at a time.
pub fn check_all() -> Vec<GadgetCheck> {
    crate::gadgets::all()
        .into_iter()
        .map(|g: GadgetName| {
            let result = crate::gadgets::probe(&g);
            GadgetCheck {
                gadget: g.command(),
                ok: result.is_ok(),
                variant: result.as_ref().ok().map(|v| v.to_string()),
                error: result.err().map(|e| format!("{e:#}")),
            }
        })
        .collect()
}
