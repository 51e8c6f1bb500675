//! `riverlog completion SHELL` and `riverlog man`: shell completions and
//! man pages generated from the same clap definitions as `--help`, so
//! they cannot drift from the commands.

use std::io::Write;
use std::path::Path;

use clap_complete::Shell;

/// Why a reference could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// Writing to stdout or the folder failed.
    #[error("cannot write the man page: {0}")]
    Write(#[from] std::io::Error),
    /// Writing the completion script to stdout failed.
    #[error("cannot write the completion script: {0}")]
    WriteCompletion(std::io::Error),
}

/// Writes `shell`'s completion script for `command` to `out`.
///
/// # Errors
/// [`ReferenceError::WriteCompletion`] when `out` refuses it (a closed
/// pipe, as in `riverlog completion bash | head`): clap_complete panics
/// on a failed write, so the script is generated into memory first.
pub fn completion(
    shell: Shell,
    command: &mut clap::Command,
    out: &mut dyn Write,
) -> Result<(), ReferenceError> {
    let name = command.get_name().to_owned();
    let mut script = Vec::new();
    clap_complete::generate(shell, command, name, &mut script);
    out.write_all(&script)
        .and_then(|()| out.flush())
        .map_err(ReferenceError::WriteCompletion)
}

/// Writes the man page of `command` (section 1) to `out`, or with
/// `out_dir`, one page per command and subcommand into that folder
/// (`riverlog.1`, `riverlog-streams.1`, `riverlog-streams-ls.1`, ...),
/// printing each file's path.
///
/// # Errors
/// [`ReferenceError::Write`] when the page or folder cannot be written.
pub fn man(
    command: clap::Command,
    out_dir: Option<&Path>,
    out: &mut dyn Write,
) -> Result<(), ReferenceError> {
    match out_dir {
        None => clap_mangen::Man::new(command).render(out)?,
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            let mut command = command.disable_help_subcommand(true);
            // Gives subcommands their display names (`riverlog-streams`).
            command.build();
            let mut pages = Vec::new();
            write_pages(command, dir, &mut pages)?;
            for page in pages {
                writeln!(out, "{}", page.display())?;
            }
        }
    }
    Ok(())
}

/// Writes the pages of `command` and its visible subcommands, depth first.
fn write_pages(
    command: clap::Command,
    dir: &Path,
    pages: &mut Vec<std::path::PathBuf>,
) -> std::io::Result<()> {
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub.clone(), dir, pages)?;
    }
    pages.push(clap_mangen::Man::new(command).generate_to(dir)?);
    Ok(())
}
