//! Backfills: materialize a range (or list) of partitions of the selected
//! assets, recorded under a backfill id so that an interrupted backfill
//! (crash, Ctrl-C) can be resumed: `--resume ID` runs only the planned
//! partitions no run of that backfill has committed yet.

use std::collections::BTreeSet;

use chrono::Utc;
use serde::Serialize;

use cairn_assets::partitions::Dimension;
use cairn_catalog::{BackfillId, BackfillStatus, NewBackfill, PartitionRef};

use crate::error::EngineError;
use crate::execute::control::RunContext;
use crate::execute::report::{Progress, RunReport};
use crate::model::selection;
use crate::model::units::Unit;
use crate::model::workspace::Workspace;
use crate::plan::selected_units;
use crate::plan::{MaterializeOptions, PartitionFilter};

/// What to backfill.
#[derive(Debug, Clone)]
pub struct BackfillOptions {
    /// Selectors (as for materialize).
    pub selection: Vec<String>,
    /// First time key (inclusive).
    pub from: Option<String>,
    /// Last time key (inclusive).
    pub to: Option<String>,
    /// Explicit keys instead of a range.
    pub partitions: Option<Vec<String>>,
    /// Rebuild fresh partitions too.
    pub force: bool,
    /// Concurrency.
    pub jobs: usize,
    /// The command line.
    pub command: String,
}

/// The result of a backfill (or of resuming one).
#[derive(Debug, Clone, Serialize)]
pub struct BackfillReport {
    /// The backfill id (give it to `--resume`).
    pub backfill_id: BackfillId,
    /// Partitions planned in total.
    pub planned: usize,
    /// Planned partitions already committed by this backfill before this
    /// command (non-zero on resume).
    pub already_done: usize,
    /// The run of this command.
    pub run: RunReport,
}

/// Plans and runs a new backfill.
pub(crate) async fn backfill(
    ws: &Workspace,
    opts: &BackfillOptions,
    progress: &dyn Progress,
) -> Result<BackfillReport, EngineError> {
    let (id, units) = plan_backfill(ws, opts)?;
    run_backfill(
        ws,
        id,
        units,
        0,
        opts.force,
        opts.jobs,
        &opts.command,
        &RunContext::default(),
        progress,
    )
    .await
}

/// Validates a backfill request, plans its units and records the backfill
/// (and its audit entry); nothing runs yet.
pub(crate) fn plan_backfill(
    ws: &Workspace,
    opts: &BackfillOptions,
) -> Result<(BackfillId, Vec<Unit>), EngineError> {
    let selected = selection::resolve(&ws.graph, &opts.selection)?;
    let partitioned: Vec<&cairn_assets::SqlAsset> = selected
        .iter()
        .filter_map(|n| ws.project.assets.get(n))
        .filter(|a| a.partitions.is_some())
        .collect();
    if partitioned.is_empty() {
        return Err(EngineError::Usage(
            "no partitioned asset selected: backfills run partitions; use `cairn materialize` for unpartitioned assets"
                .to_owned(),
        ));
    }
    let filter = match (&opts.from, &opts.to, &opts.partitions) {
        (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
            return Err(EngineError::Usage(
                "give either --from/--to or --partitions, not both".to_owned(),
            ));
        }
        (None, None, Some(keys)) => {
            for key in keys {
                let valid = partitioned.iter().any(|a| {
                    a.partitions
                        .as_ref()
                        .is_some_and(|d| d.split_key(key).is_ok())
                });
                if !valid {
                    let reason = partitioned
                        .iter()
                        .filter_map(|a| a.partitions.as_ref().and_then(|d| d.split_key(key).err()))
                        .next()
                        .map(|e| e.reason)
                        .unwrap_or_default();
                    return Err(EngineError::Usage(format!(
                        "unknown partition key `{key}`: {reason}"
                    )));
                }
            }
            PartitionFilter::Keys(keys.clone())
        }
        (from, to, None) => {
            let check = |label: &str, key: &str| -> Result<(), EngineError> {
                let valid = partitioned.iter().any(|a| {
                    a.partitions
                        .as_ref()
                        .and_then(|d| d.time())
                        .is_some_and(|t| t.parse_key(key).is_ok())
                });
                if valid {
                    return Ok(());
                }
                let reason = partitioned
                    .iter()
                    .filter_map(|a| a.partitions.as_ref().and_then(|d| d.time()))
                    .map(|t| t.parse_key(key).err().map(|e| e.reason).unwrap_or_default())
                    .next()
                    .unwrap_or_else(|| {
                        "the selected assets have no time partitions; use --partitions".to_owned()
                    });
                Err(EngineError::Usage(format!(
                    "{label} `{key}` is not a partition: {reason}"
                )))
            };
            let has_static_only = partitioned.iter().all(|a| {
                a.partitions.as_ref().is_some_and(|d| {
                    d.dimensions
                        .iter()
                        .all(|x| matches!(x, Dimension::Static(_)))
                })
            });
            if has_static_only && (from.is_some() || to.is_some()) {
                return Err(EngineError::Usage(
                    "--from/--to select time partitions, and the selected assets have only static partitions; use --partitions".to_owned(),
                ));
            }
            if let Some(f) = from {
                check("--from", f)?;
            }
            if let Some(t) = to {
                check("--to", t)?;
            }
            if let (Some(f), Some(t)) = (from, to)
                && f > t
            {
                return Err(EngineError::Usage(format!(
                    "--from {f} is after --to {t}; swap them"
                )));
            }
            match (from, to) {
                (None, None) => PartitionFilter::All,
                _ => PartitionFilter::Range {
                    from: from.clone().unwrap_or_default(),
                    to: to.clone().unwrap_or_else(|| "\u{10FFFF}".to_owned()),
                },
            }
        }
    };
    let snapshot = crate::state::snapshot::snapshot(ws)?;
    let units = selected_units(ws, &snapshot, &selected, &filter)?;
    let id = BackfillId(uuid::Uuid::now_v7().to_string());
    ws.catalog.create_backfill(&NewBackfill {
        id: id.clone(),
        user: ws.principal(),
        command: opts.command.clone(),
        created_at: Utc::now(),
        selection: opts.selection.clone(),
        from: opts.from.clone(),
        to: opts.to.clone(),
        partitions: opts.partitions.clone(),
        force: opts.force,
        units: units
            .iter()
            .map(|(a, p)| PartitionRef {
                asset: a.clone(),
                partition: p.clone(),
            })
            .collect(),
    })?;
    crate::records::audit::audit(
        ws,
        "backfill",
        &id.0,
        serde_json::json!({
            "command": opts.command, "selection": opts.selection, "from": opts.from, "to": opts.to,
            "partitions": opts.partitions, "force": opts.force, "planned": units.len(),
        }),
    )?;
    Ok((id, units))
}

/// Finishes an interrupted backfill: runs the planned partitions that no
/// run of it has committed.
pub(crate) async fn resume_backfill(
    ws: &Workspace,
    id: &BackfillId,
    jobs: usize,
    command: &str,
    progress: &dyn Progress,
) -> Result<BackfillReport, EngineError> {
    run_remaining(
        ws,
        id,
        jobs,
        command,
        true,
        &RunContext::default(),
        progress,
    )
    .await
}

/// Runs the planned partitions of backfill `id` that no run of it has
/// committed yet — a resume, or the run queue starting a planned
/// backfill (`audit_resume` false: its request was audited when queued).
pub(crate) async fn run_remaining(
    ws: &Workspace,
    id: &BackfillId,
    jobs: usize,
    command: &str,
    audit_resume: bool,
    ctx: &RunContext,
    progress: &dyn Progress,
) -> Result<BackfillReport, EngineError> {
    let Some(record) = ws.catalog.backfill(id)? else {
        return Err(no_such_backfill(ws, id)?);
    };
    let done: BTreeSet<PartitionRef> = ws.catalog.committed_in_backfill(id)?.into_iter().collect();
    let remaining: Vec<(String, String)> = record
        .backfill
        .units
        .iter()
        .filter(|u| !done.contains(*u))
        .filter(|u| ws.project.assets.contains_key(&u.asset))
        .map(|u| (u.asset.clone(), u.partition.clone()))
        .collect();
    let already = record.backfill.units.len() - remaining.len();
    ws.catalog.reopen_backfill(id)?;
    if audit_resume {
        crate::records::audit::audit(
            ws,
            "backfill_resume",
            &id.0,
            serde_json::json!({ "command": command, "remaining": remaining.len(), "already_done": already }),
        )?;
    }
    run_backfill(
        ws,
        id.clone(),
        remaining,
        already,
        record.backfill.force,
        jobs,
        command,
        ctx,
        progress,
    )
    .await
}

/// The error for a backfill id the catalog does not know, naming the
/// recent ones.
pub(crate) fn no_such_backfill(
    ws: &Workspace,
    id: &BackfillId,
) -> Result<EngineError, EngineError> {
    let known: Vec<String> = ws
        .catalog
        .backfills(5)?
        .into_iter()
        .map(|b| b.backfill.id.0)
        .collect();
    Ok(EngineError::Usage(format!(
        "no backfill `{id}`; recent ones: {}",
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    )))
}

#[expect(clippy::too_many_arguments, reason = "one internal call site pair")]
async fn run_backfill(
    ws: &Workspace,
    id: BackfillId,
    units: Vec<(String, String)>,
    already_done: usize,
    force: bool,
    jobs: usize,
    command: &str,
    ctx: &RunContext,
    progress: &dyn Progress,
) -> Result<BackfillReport, EngineError> {
    let planned = units.len() + already_done;
    let units_len = units.len();
    let selection: Vec<String> = units
        .iter()
        .map(|u| u.0.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let run = if units.is_empty() {
        if let Some(run) = &ctx.queued {
            ws.catalog
                .finish_run(run, cairn_catalog::RunStatus::Succeeded, None)?;
        }
        RunReport {
            run_id: ctx.queued.clone(),
            results: Vec::new(),
            wall: std::time::Duration::ZERO,
        }
    } else {
        let opts = MaterializeOptions {
            selection,
            force,
            jobs,
            command: command.to_owned(),
            partitions: PartitionFilter::Units(units),
            backfill: Some(id.clone()),
        };
        match crate::execute::run::materialize(ws, &opts, ctx, progress).await {
            Ok(r) => r,
            Err(e) => {
                ws.catalog.finish_backfill(&id, BackfillStatus::Failed)?;
                return Err(e);
            }
        }
    };
    let status = if ctx.control.stop().is_some() && run.results.len() < units_len {
        // Stopped before the end: resumable with `--resume`.
        BackfillStatus::Failed
    } else if run.has_failures() {
        BackfillStatus::Failed
    } else {
        BackfillStatus::Succeeded
    };
    ws.catalog.finish_backfill(&id, status)?;
    Ok(BackfillReport {
        backfill_id: id,
        planned,
        already_done,
        run,
    })
}
