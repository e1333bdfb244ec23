//! `ig`: parse, set up logging, check the host, dispatch.

use clap::Parser;
use tracer::cli::{Cli, Command};
use tracer::collection::ContainerCollection;
use tracer::kernel;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ig: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Version => {
            println!("ig {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Trace { gadget } => {
            kernel::check_host(cli.auto_mount_filesystems)?;
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let collection = ContainerCollection::default();
            runtime.block_on(gadget.run(&collection))
        }
    }
}

fn init_logging(verbose: bool) {
    let default = if verbose { "debug" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("IG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
}
