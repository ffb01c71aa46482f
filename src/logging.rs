//! Whether the binaries' log lines on stderr carry ANSI colour.
//!
//! Logs are often written to a file or a pipe (CI, `2> run.log`, CloudWatch): escape codes there
//! are noise. So colour only when stderr is a terminal, and never when `NO_COLOR` is set to a
//! non-empty value (<https://no-color.org>). The CLI calls [`stderr_colour`]; the trigger never
//! colours (Lambda's stderr is CloudWatch).

use std::ffi::OsStr;
use std::io::IsTerminal;

/// The decision, from its two inputs: stderr is a terminal, and `NO_COLOR`'s value.
pub fn colour(stderr_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// [`colour`] for this process's stderr and environment.
pub fn stderr_colour() -> bool {
    colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_for_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some(OsStr::new(""))));
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(false, None));
        assert!(!colour(false, Some(OsStr::new("1"))));
    }
}
