//! `cairn --server URL COMMAND` (or `CAIRN_SERVER=URL`): `status`, `show`,
//! `lineage` (with `--column` too), `materialize` (with `--explain` too)
//! and `backfill` sent to a running `cairn serve` instead of opening a
//! project here, printing what the local command prints: each reply is
//! turned back into the engine's values (`decode.rs`) and rendered by
//! the command's own `render_text`/`render_json`.
//!
//! What differs, by necessity: timings are the server's; runs go through
//! the server's run queue (a run may wait there; `--jobs` defaults to the
//! server's 1 rather than this machine's cores; Ctrl-C stops watching,
//! not the run); `CAIRN_NOW` and the test hooks are read by the server
//! process. The token for a server with `[server.tokens]` is read from
//! `CAIRN_TOKEN`. Exit codes are the local command's; an unreachable
//! server is exit code 1.

mod client;
pub(crate) mod decode;
mod runs;

use std::collections::HashMap;

use cairn_proto::v1 as pb;

use crate::Failure;
use crate::args::{Cli, Command};
use crate::commands::{NOW_ENV, lineage, show, status, tick};
use client::Remote;

/// Runs the command through the server `cli.server`; the exit code.
pub(crate) async fn run(cli: Cli) -> Result<u8, Failure> {
    let Some(url) = cli.server else {
        return Err(Failure::Runtime(
            "internal error: no server to send the command to".to_owned(),
        ));
    };
    let given = if cli.server_from_env {
        "CAIRN_SERVER is set"
    } else {
        "--server is given"
    };
    let local_only = |name: &str| {
        Failure::Usage(format!(
            "`cairn {name}` works on a project folder and does not go through a server, but {given}; run it in the project folder without --server (and with CAIRN_SERVER unset)"
        ))
    };
    let name = match &cli.command {
        Command::Query(_) => "query",
        Command::Check(_) => "check",
        Command::Cost(_) => "cost",
        Command::Audit(_) => "audit",
        Command::Gc(_) => "gc",
        Command::Serve(_) => "serve",
        Command::Catalog(_) => "catalog migrate",
        _ => "",
    };
    if !name.is_empty() {
        return Err(local_only(name));
    }
    if cli.command.memory_limit().is_some() {
        return Err(Failure::Usage(format!(
            "--memory-limit bounds a run in this process, but {given}: the server's runs use its project's [engine] memory_limit; set it there, or run here without --server"
        )));
    }
    if cli.project_given {
        return Err(Failure::Usage(format!(
            "--project names a project folder here, but {given}: the server works on its own project; drop --project, or --server (and CAIRN_SERVER) to work on the folder"
        )));
    }
    if std::env::var_os(NOW_ENV).is_some() {
        return Err(Failure::Usage(format!(
            "{NOW_ENV} is set, but {given}: the server judges time by its own clock; set {NOW_ENV} where `cairn serve` runs, or unset it here"
        )));
    }
    // Refused before connecting: what the server cannot be asked.
    let mut depth = 0;
    match &cli.command {
        Command::Lineage(args) if args.column.is_some() => {
            // The API's depth 0 means "to the sources".
            depth = match args.depth {
                None => 0,
                Some(0) => {
                    return Err(Failure::Usage(
                        "--depth 0 cannot be sent to a server (there 0 means no limit); give 1 or more, or leave --depth out to walk to the sources".to_owned(),
                    ));
                }
                Some(n) => u32::try_from(n).unwrap_or(u32::MAX),
            };
        }
        Command::Backfill(args) => crate::commands::backfill::check_resume(args)?,
        _ => {}
    }
    let mut remote = Remote::connect(&url).await?;
    match cli.command {
        Command::Status(args) => {
            let reply = remote
                .client
                .status(pb::StatusRequest {
                    selection: args.selection.clone(),
                    partitions: args.partitions,
                })
                .await
                .map_err(|s| remote.failure(&s))?
                .into_inner();
            let undelivered = reply.undelivered_alerts;
            let code = status::print(decode::statuses(reply)?, &args)?;
            if args.format == crate::args::Format::Text
                && let Some(n) = undelivered
            {
                crate::commands::alerts::undelivered_count_line(n, &mut std::io::stdout().lock())?;
            }
            Ok(code)
        }
        Command::Show(args) => {
            let reply = remote
                .client
                .get_asset(pb::GetAssetRequest { name: args.asset })
                .await
                .map_err(|s| remote.failure(&s))?
                .into_inner();
            let (details, urls): (_, HashMap<String, String>) = decode::details(reply)?;
            let file_url = |path: &str| urls.get(path).cloned().unwrap_or_else(|| path.to_owned());
            show::print(&details, &file_url, args.format)
        }
        Command::Lineage(args) if args.column.is_some() => {
            let reply = remote
                .client
                .column_lineage(pb::ColumnLineageRequest {
                    asset: args.asset,
                    column: args.column.unwrap_or_default(),
                    depth,
                })
                .await
                .map_err(|s| remote.failure(&s))?
                .into_inner();
            lineage::print_columns(&decode::column_node(reply)?, args.format)
        }
        Command::Lineage(args) => {
            let reply = remote
                .client
                .lineage(pb::LineageRequest {
                    asset: args.asset,
                    upstream: args.upstream,
                    downstream: args.downstream,
                })
                .await
                .map_err(|s| remote.failure(&s))?
                .into_inner();
            let around = decode::around(reply, args.upstream, args.downstream);
            lineage::print(&around, args.format)
        }
        Command::Tick(args) => {
            let reply = remote
                .client
                .tick(pb::TickRequest {
                    at: args.at.clone().unwrap_or_default(),
                })
                .await
                .map_err(|s| remote.failure(&s))?
                .into_inner();
            let report = decode::tick(reply)?;
            let mut out = std::io::stdout().lock();
            match args.format {
                crate::args::Format::Json => tick::render_json(&report, None, &mut out)?,
                crate::args::Format::Text => tick::render_text(&report, None, &mut out)?,
            }
            Ok(0)
        }
        Command::Materialize(args) => runs::materialize(&mut remote, args).await,
        Command::Backfill(args) => runs::backfill(&mut remote, args).await,
        Command::Query(_)
        | Command::Check(_)
        | Command::Cost(_)
        | Command::Audit(_)
        | Command::Gc(_)
        | Command::Serve(_)
        | Command::Catalog(_) => Err(local_only(name)),
    }
}
