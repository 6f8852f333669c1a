//! `materialize` and `backfill` through a server: the request is queued
//! (a bad selection is refused before anything is queued), then the run is
//! watched to its end — its units printed as they finish, by the same
//! progress display as a local run — and its report, sent by the server
//! just before the end, printed by the local command's renderer.

use std::io::Write;

use cairn_engine::{BackfillCounts, BackfillReport, Progress, RunEvent, RunId, RunReport};
use cairn_proto::v1 as pb;

use super::client::Remote;
use super::decode;
use crate::Failure;
use crate::args::{BackfillArgs, Format, MaterializeArgs};
use crate::commands::{backfill, materialize};
use crate::output::RunProgress;

/// `cairn materialize` (and `--explain`) through the server.
pub(super) async fn materialize(remote: &mut Remote, args: MaterializeArgs) -> Result<u8, Failure> {
    let request = pb::MaterializeRequest {
        selection: args.selection,
        force: args.force,
        // 0: the server's default.
        jobs: args.jobs.map_or(0, u32::from),
        partitions: Vec::new(),
    };
    if args.explain {
        let plan = remote
            .client
            .explain(request)
            .await
            .map_err(|s| remote.failure(&s))?
            .into_inner();
        return materialize::print_plan(&decode::plan(plan)?, args.format);
    }
    let accepted = remote
        .client
        .materialize(request)
        .await
        .map_err(|s| remote.failure(&s))?
        .into_inner();
    let (report, _) = watch(remote, accepted, args.format).await?;
    materialize::print(&report, args.format)
}

/// `cairn backfill` (and `--resume`) through the server.
pub(super) async fn backfill(remote: &mut Remote, args: BackfillArgs) -> Result<u8, Failure> {
    let request = pb::BackfillRequest {
        selection: args.selection,
        from: args.from.unwrap_or_default(),
        to: args.to.unwrap_or_default(),
        partitions: args
            .partitions
            .as_deref()
            .map(backfill::partition_list)
            .unwrap_or_default(),
        force: args.force,
        jobs: args.jobs.map_or(0, u32::from),
        resume: args.resume.unwrap_or_default(),
    };
    let accepted = remote
        .client
        .backfill(request)
        .await
        .map_err(|s| remote.failure(&s))?
        .into_inner();
    let run_id = accepted.run_id.clone();
    let (run, counts) = watch(remote, accepted, args.format).await?;
    let Some(counts) = counts else {
        return Err(Failure::Runtime(format!(
            "the server reported run {run_id} without its backfill: it runs another version of cairn; use the same version on both sides"
        )));
    };
    backfill::print(
        &BackfillReport {
            backfill_id: counts.id,
            planned: counts.planned,
            already_done: counts.already_done,
            run,
        },
        args.format,
    )
}

/// Watches an accepted run to its end, showing its units as they finish
/// (nothing for JSON output): its report. A run that failed or was
/// cancelled without a report, or a server that stopped before the end,
/// is an error (exit code 1) saying what to do.
async fn watch(
    remote: &mut Remote,
    accepted: pb::RunAccepted,
    format: Format,
) -> Result<(RunReport, Option<BackfillCounts>), Failure> {
    let id = accepted.run_id;
    if accepted.attached {
        let _ = writeln!(
            std::io::stderr(),
            "cairn: run {id} was already building all of this; following it"
        );
    }
    let mut events = remote
        .client
        .watch_run(pb::WatchRunRequest {
            run_id: id.clone(),
            reports: true,
        })
        .await
        .map_err(|s| remote.failure(&s))?
        .into_inner();
    let progress = RunProgress::new(format == Format::Json);
    let mut planned = false;
    let mut report = None;
    let mut end = None;
    let watched = loop {
        let event = match events.message().await {
            Ok(Some(event)) => event,
            Ok(None) => break Ok(()),
            Err(status) => break Err(status),
        };
        match event.event.as_str() {
            "planned" => {
                planned = true;
                let units: Vec<(String, String)> = event
                    .planned
                    .into_iter()
                    .map(|u| (u.asset, u.partition))
                    .collect();
                progress.event(RunEvent::RunStarted {
                    run_id: &RunId(event.run_id),
                    planned: &units,
                });
            }
            "unit_started" => progress.event(RunEvent::AssetStarted {
                asset: &event.asset,
                partition: &event.partition,
            }),
            "retrying" => progress.event(RunEvent::AssetRetrying {
                asset: &event.asset,
                partition: &event.partition,
                message: &event.error,
            }),
            "report" => report = event.report,
            "finished" => end = Some((event.status, event.error)),
            _ => {
                if let Some(result) = decode::unit_event(&event) {
                    progress.event(RunEvent::AssetFinished { result: &result });
                }
            }
        }
    };
    progress.finish();
    if let Err(status) = watched {
        return Err(match remote.failure(&status) {
            Failure::Runtime(message) => Failure::Runtime(format!(
                "lost run {id} while watching it: {message}; the run goes on (or resumes when the server restarts)"
            )),
            other => other,
        });
    }
    let Some((status, error)) = end else {
        return Err(Failure::Runtime(format!(
            "the server at {} stopped before run {id} finished; the run resumes when `cairn serve` starts again",
            remote.url
        )));
    };
    let because = if error.is_empty() {
        String::new()
    } else {
        format!(": {error}")
    };
    let Some(report) = report else {
        return Err(Failure::Runtime(format!("run {id} {status}{because}")));
    };
    let (mut run, backfill) = decode::run_report(report)?;
    if !planned {
        // Nothing was stale: the local command starts no run then.
        run.run_id = None;
    }
    if status == "cancelled" {
        // Its finished units were listed as they finished.
        return Err(Failure::Runtime(format!("run {id} was cancelled{because}")));
    }
    Ok((run, backfill))
}
