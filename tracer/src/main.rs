//! `ig`: parse, set up logging, check the host, dispatch.

use anyhow::Context;
use clap::Parser;
use tracer::cli::{Cli, Command};
use tracer::collection::Collection;
use tracer::io::RunIo;
use tracer::{kernel, sources};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracer::logging::init(cli.verbose);
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
        Command::Daemon(args) => {
            kernel::check_host(cli.auto_mount_filesystems)?;
            runtime()?.block_on(tracer::daemon::serve(args, source_opts))
        }
        Command::Gadget(cmd) => {
            if cmd.needs_kernel() {
                kernel::check_host(cli.auto_mount_filesystems)?;
            }
            // Sources start before a gadget loads: a container created in
            // between is in the collection, so the gadget's filter gets it.
            let (collection, _sources) = if cmd.follows_containers() {
                let collection = Collection::new();
                let s =
                    sources::start(&source_opts, &collection).context("starting the container sources")?;
                (collection, Some(s))
            } else {
                (sources::running_now(&source_opts), None)
            };
            runtime()?.block_on(cmd.execute(&root, &collection, RunIo::local()))
        }
    }
}
