//! The subcommands: dispatch, and what they share (the command line as
//! recorded, `--jobs`, `--since` ages, JSON output). Each command lives in
//! its own file, with its I/O (`run`) apart from its pure rendering
//! (`render_text`, `render_json`).

mod audit;
mod backfill;
mod check;
mod cost;
mod gc;
mod lineage;
mod materialize;
mod query;
mod show;
mod status;

use std::io::Write;

use serde::Serialize;

use cairn_engine::Workspace;

use crate::Failure;
use crate::args::{Cli, Command};

/// Runs the parsed command; returns the exit code.
pub fn run(cli: Cli) -> Result<u8, Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))?;
    let ws = Workspace::open(&cli.project)?;
    match cli.command {
        Command::Materialize(args) => runtime.block_on(materialize::run(&ws, args)),
        Command::Status(args) => status::run(&ws, args),
        Command::Query(args) => runtime.block_on(query::run(&ws, args)),
        Command::Show(args) => show::run(&ws, args),
        Command::Lineage(args) if args.column.is_some() => {
            runtime.block_on(lineage::run_columns(&ws, args))
        }
        Command::Lineage(args) => lineage::run(&ws, args),
        Command::Backfill(args) => runtime.block_on(backfill::run(&ws, args)),
        Command::Check(args) => runtime.block_on(check::run(&ws, args)),
        Command::Cost(args) => cost::run(&ws, args),
        Command::Audit(args) => audit::run(&ws, args),
        Command::Gc(args) => runtime.block_on(gc::run(&ws, args)),
    }
}

/// `value` as pretty JSON and a newline on `out`. Every `--format json`
/// output of a command goes through here, from that command's
/// `render_json`.
pub(crate) fn print_json(value: &impl Serialize, out: &mut impl Write) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::Runtime(format!("JSON output: {e}")))?;
    writeln!(out, "{text}")?;
    Ok(())
}

/// The command line as run records keep it: `cairn ARGS...`.
pub(crate) fn command_line() -> String {
    let args: Vec<String> = std::env::args().collect();
    let mut line = String::from("cairn");
    for a in args.iter().skip(1) {
        line.push(' ');
        line.push_str(a);
    }
    line
}

/// `--jobs N`, or the number of cores.
pub(crate) fn default_jobs(jobs: Option<u16>) -> usize {
    jobs.map(usize::from).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

/// `7d`, `12h`, `30m`, `2w` as a duration: `Ok(None)` when malformed,
/// `Err` when larger than a time can hold.
fn parse_age(text: &str) -> Result<Option<chrono::TimeDelta>, ()> {
    let Some(split) = text.find(|c: char| !c.is_ascii_digit()) else {
        return Ok(None);
    };
    let Ok(n) = text[..split].parse::<i64>() else {
        // Digits that do not fit an i64 are a number, just too large.
        return if split > 0 { Err(()) } else { Ok(None) };
    };
    let age = match &text[split..] {
        "m" => chrono::TimeDelta::try_minutes(n),
        "h" => chrono::TimeDelta::try_hours(n),
        "d" => chrono::TimeDelta::try_days(n),
        "w" => chrono::TimeDelta::try_weeks(n),
        _ => return Ok(None),
    };
    age.map(Some).ok_or(())
}

/// `--since AGE` as the instant that long ago.
pub(crate) fn since(text: Option<&str>) -> Result<Option<chrono::DateTime<chrono::Utc>>, Failure> {
    let Some(text) = text else { return Ok(None) };
    let too_large = || {
        Failure::Usage(format!(
            "--since `{text}` reaches before the earliest time Cairn can represent; give a smaller age such as 52w"
        ))
    };
    let age = parse_age(text).map_err(|()| too_large())?.ok_or_else(|| {
        Failure::Usage(format!(
            "--since `{text}`: give an age such as 30m, 12h, 7d or 2w"
        ))
    })?;
    chrono::Utc::now()
        .checked_sub_signed(age)
        .map(Some)
        .ok_or_else(too_large)
}
