//! Output helpers shared by the subcommands.

use crate::cli::Format;
use std::io::IsTerminal;

/// The format to print in: the flag if given, else text on a terminal and JSON in a pipe.
pub fn resolve_format(flag: Option<Format>) -> Format {
    flag.unwrap_or_else(|| if std::io::stdout().is_terminal() { Format::Text } else { Format::Json })
}

/// Prints one JSON document on stdout.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
