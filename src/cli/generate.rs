//! `ironpoll generate`: the man pages and the shell completions, made from
//! the command-line definitions so that they never drift from them; the
//! package (misc/package.sh) ships what this writes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// What to write
    #[arg(value_enum)]
    what: What,
    /// The directory to write into
    #[arg(long, value_name = "DIR", default_value = ".")]
    out: PathBuf,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum What {
    /// ironpoll.1, and ironpoll-<command>.1 for each command
    Man,
    /// ironpoll.bash, _ironpoll (zsh) and ironpoll.fish
    Completions,
}

pub fn run(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot make {}", args.out.display()))?;
    let written = match args.what {
        What::Man => man_pages(&args.out)?,
        What::Completions => completions(&args.out)?,
    };
    for p in written {
        println!("{}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn man_pages(out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let cmd = super::Cli::command();
    let mut written = Vec::new();
    let mut page = |cmd: clap::Command, name: String| -> anyhow::Result<()> {
        let path = out.join(format!("{name}.1"));
        let mut text = Vec::new();
        clap_mangen::Man::new(cmd.name(name)).render(&mut text)?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
        Ok(())
    };
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        page(sub.clone(), format!("ironpoll-{}", sub.get_name()))?;
    }
    page(cmd, "ironpoll".into())?;
    Ok(written)
}

fn completions(out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut cmd = super::Cli::command();
    let mut written = Vec::new();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        written.push(clap_complete::generate_to(
            shell, &mut cmd, "ironpoll", out,
        )?);
    }
    Ok(written)
}
