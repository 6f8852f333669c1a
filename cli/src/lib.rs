//! `cairn-cli` is the only crate that knows the terminal: argument parsing
//! (clap), text and JSON output, progress display and exit codes. Domain
//! types from the engine are rendered here, never turned into wire types
//! elsewhere.
//!
//! Exit codes: 0 success; 1 something failed or (with `--check`) is not
//! fresh; 2 a usage or project error (nothing was run or written).
#![deny(missing_docs)]

mod args;
mod commands;
mod explain;
mod output;
mod serve;

use std::io::Write;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};

use crate::args::Cli;

/// The failure of a command, already classified for the exit code.
pub(crate) enum Failure {
    /// User input is at fault (exit 2).
    Usage(String),
    /// Something failed at run time (exit 1).
    Runtime(String),
    /// Already reported; exit with this code.
    Reported(u8),
}

impl From<cairn_engine::EngineError> for Failure {
    fn from(e: cairn_engine::EngineError) -> Self {
        if e.is_user_error() {
            Failure::Usage(e.to_string())
        } else {
            Failure::Runtime(e.to_string())
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Failure::Reported(0)
        } else {
            Failure::Runtime(format!("writing output: {e}"))
        }
    }
}

/// Parses the command line, runs the command, prints errors once and
/// returns the process exit code.
pub fn main_exit_code() -> ExitCode {
    let cli = match Cli::command().try_get_matches().and_then(|matches| {
        let mut cli = Cli::from_arg_matches(&matches)?;
        cli.project_given = matches.value_source("project") == Some(ValueSource::CommandLine);
        cli.server_from_env = matches.value_source("server") == Some(ValueSource::EnvVariable);
        Ok(cli)
    }) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    install_panic_hook();
    // A server logs what its run queue does; commands stay quiet.
    init_tracing(if matches!(cli.command, args::Command::Serve(_)) {
        "warn,cairn_engine::queue=info,cairn_engine::automation=info"
    } else {
        "warn"
    });
    match commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(Failure::Reported(code)) => ExitCode::from(code),
        Err(Failure::Usage(message)) => {
            report(&message);
            ExitCode::from(2)
        }
        Err(Failure::Runtime(message)) => {
            report(&message);
            ExitCode::from(1)
        }
    }
}

/// Exit code of an internal error (a bug): a panic anywhere, including in
/// a build task.
pub const INTERNAL_ERROR_EXIT: i32 = 101;

/// A panic is a bug, not something the user did: say so in one line, where
/// it happened, and how to report it, then exit with
/// [`INTERNAL_ERROR_EXIT`] — no backtrace dump (`CAIRN_BACKTRACE=1` keeps
/// Rust's default report for debugging). Nothing half-done is committed:
/// commits are single catalog transactions.
fn install_panic_hook() {
    if std::env::var_os("CAIRN_BACKTRACE").is_some() {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".to_owned());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "error: internal error in cairn {}: {what}{at}\n  this is a bug, please report it with the command you ran (CAIRN_BACKTRACE=1 shows Rust's full report)",
            env!("CARGO_PKG_VERSION")
        );
        std::process::exit(INTERNAL_ERROR_EXIT);
    }));
}

fn report(message: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "error: {message}");
}

/// Log lines on stderr, filtered by `CAIRN_LOG` (tracing's env-filter
/// syntax), else by `default`.
fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // A closed stderr must not stop a server: no report of failed writes
    // (it would go to the same closed stderr, and panic).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .log_internal_errors(false)
        .try_init();
}
