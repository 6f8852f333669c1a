//! The `cairn` binary: a thin shell around [`cairn_cli::run`].

use std::process::ExitCode;

fn main() -> ExitCode {
    cairn_cli::main_exit_code()
}
