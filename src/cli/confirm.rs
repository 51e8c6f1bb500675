//! Asking before something that cannot be undone: on a terminal the user
//! answers; without one the command refuses unless `--yes` was given, so a
//! script never deletes by accident and never hangs on a question.

use std::io::{BufRead, IsTerminal, Write};

use super::CliError;

/// Fails unless there is a terminal to ask on; `about` says what would
/// be confirmed.
///
/// # Errors
/// [`CliError::Usage`] (exit 2) saying to pass `--yes`.
pub fn need_terminal(about: &str) -> Result<(), CliError> {
    if std::io::stdin().is_terminal() {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "{about}: pass --yes to confirm (there is no terminal to ask on)"
        )))
    }
}

/// Asks `question` on stderr and reads the answer from the terminal.
///
/// # Errors
/// [`CliError::Declined`] (exit 1) unless the answer is `y` or `yes`.
pub fn ask(question: &str) -> Result<(), CliError> {
    let mut err = std::io::stderr().lock();
    write!(err, "{question} [y/N] ")?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if is_yes(&answer) {
        Ok(())
    } else {
        Err(CliError::Declined(
            "not confirmed; nothing was changed".into(),
        ))
    }
}

fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_y_or_yes_confirms() {
        for yes in ["y\n", "Y", " yes \r\n", "YES"] {
            assert!(is_yes(yes), "{yes:?}");
        }
        for no in ["", "\n", "n", "no", "yess", "sure"] {
            assert!(!is_yes(no), "{no:?}");
        }
    }
}
