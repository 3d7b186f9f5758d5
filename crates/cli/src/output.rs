//! Output helpers shared by the subcommands.

use crate::cli::Format;
use std::io::IsTerminal;

/// The format to print in: the flag if given, else text on a terminal and JSON in a pipe.
pub fn resolve_format(flag: Option<Format>) -> Format {
    flag.unwrap_or_else(|| if std::io::stdout().is_terminal() { Format::Text } else { Format::Json })
}

/// Prints one JSON document on stdout, inert (see `deploy_runner_gate::text`).
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    outln!("{}", deploy_runner_gate::text::to_json_string_pretty(value)?);
    Ok(())
}

/// Writes a line to stdout. Output is part of the contract: a write that fails ends the command with exit 2 and
/// one clear line on stderr (a full disk, a closed file), or quietly when the reader went away (`| head`), instead
/// of the panic `println!` would give.
pub fn out(line: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
        if error.kind() != std::io::ErrorKind::BrokenPipe {
            err(&format!("deploy-runner: error: cannot write to stdout: {error}"));
        }
        std::process::exit(i32::from(crate::EXIT_USAGE));
    }
}

/// Writes a line to stderr; a failure is ignored (there is nowhere left to report it).
pub fn err(line: &str) {
    use std::io::Write;
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{line}").and_then(|()| stderr.flush());
}
