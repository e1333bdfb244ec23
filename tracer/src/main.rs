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
    // Every command but these reads other processes or loads eBPF.
    let needs_privileges =
        !matches!(cli.command, Command::Version | Command::Completion(_) | Command::Man(_));
    if cli.auto_sd_unit_restart && needs_privileges && !kernel::has_privileges() {
        let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--auto-sd-unit-restart").collect();
        let code = runtime()?.block_on(tracer::sdunit::run_as_unit(&root, args))?;
        std::process::exit(code);
    }
    match cli.command {
        Command::Version => {
            println!("ig {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Completion(args) => args
            .write(<Cli as clap::CommandFactory>::command(), &mut std::io::stdout())
            .context("writing the completion script"),
        Command::Man(args) => {
            let n = args.write(<Cli as clap::CommandFactory>::command()).context("writing the man pages")?;
            eprintln!("ig: {n} man pages in {}", args.dir.display());
            Ok(())
        }
        Command::Check(args) => {
            kernel::check_host(cli.auto_mount_filesystems)?;
            // A session registers its ring buffer with the runtime.
            runtime()?.block_on(async { args.run() })
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
