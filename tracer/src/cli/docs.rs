//! `completion SHELL` and `man --dir DIR`, for ig and gadgetctl alike:
//! shell completions and man pages made from the clap definitions
//! themselves, so they always list the flags the binary takes.

use std::io::Write;
use std::path::PathBuf;

/// Print a completion script for a shell.
#[derive(Debug, clap::Args)]
pub struct CompletionArgs {
    /// bash, zsh, fish (also elvish, powershell).
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Write the man pages (the command's and every subcommand's) into a directory.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Where the pages go, e.g. /usr/local/share/man/man1.
    #[arg(long)]
    pub dir: PathBuf,
}

impl CompletionArgs {
    /// A closed pipe (`| head`) is not an error.
    pub fn write(&self, mut cmd: clap::Command, out: &mut dyn Write) -> std::io::Result<()> {
        let name = cmd.get_name().to_string();
        // clap_complete panics on a write error: it writes to memory here.
        let mut script = Vec::new();
        clap_complete::generate(self.shell, &mut cmd, name, &mut script);
        match out.write_all(&script).and_then(|()| out.flush()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => other,
        }
    }
}

impl ManArgs {
    /// How many pages were written.
    pub fn write(&self, cmd: clap::Command) -> std::io::Result<usize> {
        std::fs::create_dir_all(&self.dir)?;
        let before = pages(&self.dir)?;
        clap_mangen::generate_to(cmd, &self.dir)?;
        Ok(pages(&self.dir)?.saturating_sub(before))
    }
}

fn pages(dir: &std::path::Path) -> std::io::Result<usize> {
    Ok(std::fs::read_dir(dir)?.flatten().filter(|e| e.path().extension().is_some_and(|x| x == "1")).count())
}
