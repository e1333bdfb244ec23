//! `ig`: parse, set up logging, check the host, dispatch.

use anyhow::Context;
use clap::Parser;
use tracer::cli::{Cli, Command};
use tracer::collection::Collection;
use tracer::{kernel, sources};

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
    let root = shared::hookproto::host_root();
    let source_opts = sources::SourceOptions::new(&root, cli.runtimes.clone());
    let runtime = || tokio::runtime::Builder::new_current_thread().enable_all().build();
    match cli.command {
        Command::Version => {
            println!("ig {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::ListContainers(args) => runtime()?.block_on(args.run(&source_opts)),
        Command::Snapshot { gadget } => {
            kernel::check_host(cli.auto_mount_filesystems)?;
            gadget.run(&source_opts)
        }
        Command::Trace { gadget } => {
            kernel::check_host(cli.auto_mount_filesystems)?;
            let collection = Collection::new();
            // Sources start before the gadget loads: a container created in
            // between is in the collection, so the gadget's filter gets it.
            let _sources =
                sources::start(&source_opts, &collection).context("starting the container sources")?;
            runtime()?.block_on(gadget.run(&collection))
        }
    }
}

fn init_logging(verbose: bool) {
    let default = if verbose { "debug" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("IG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
