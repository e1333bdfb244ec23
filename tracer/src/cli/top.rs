//! `ig top <gadget>`: refreshing tables.

use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::CommonFlags;
use crate::collection::Collection;
use crate::gadgets::top_file::TopFile;
use crate::gadgets::top_tcp::TopTcp;
use crate::io::RunIo;
use crate::top::{TopOptions, run_top};

#[derive(Debug, Subcommand)]
pub enum TopCommand {
    /// Reads and writes per file (regular files; -a for all).
    File(FileArgs),
    /// Bytes sent and received per TCP connection.
    Tcp(TopFlags),
}

#[derive(Debug, Args)]
pub struct TopFlags {
    #[command(flatten)]
    pub common: CommonFlags,

    /// Seconds between tables.
    #[arg(long, default_value_t = 1.0)]
    pub interval: f64,

    /// At most this many rows per table.
    #[arg(short = 'm', long = "max-rows", default_value_t = 50)]
    pub max_rows: usize,

    /// Sort by these columns, `-` for descending (default: the gadget's).
    #[arg(long, allow_hyphen_values = true)]
    pub sort: Option<String>,
}

#[derive(Debug, Args)]
pub struct FileArgs {
    #[command(flatten)]
    pub top: TopFlags,

    /// Also sockets, pipes and devices, not only regular files.
    #[arg(short = 'a', long)]
    pub all_files: bool,
}

impl TopFlags {
    fn options(&self) -> anyhow::Result<TopOptions> {
        anyhow::ensure!(
            self.interval.is_finite() && self.interval >= 0.1,
            "--interval must be at least 0.1 s"
        );
        Ok(TopOptions {
            interval: Duration::from_secs_f64(self.interval),
            max_rows: self.max_rows,
            sort: self.sort.clone(),
        })
    }
}

impl TopCommand {
    pub async fn run(self, collection: &Arc<Collection>, io: RunIo) -> anyhow::Result<()> {
        match self {
            TopCommand::File(a) => {
                let gadget = TopFile { all_files: a.all_files };
                run_top(gadget, a.top.common.run_options(), a.top.options()?, collection, io).await
            }
            TopCommand::Tcp(a) => run_top(TopTcp, a.common.run_options(), a.options()?, collection, io).await,
        }
    }
}
