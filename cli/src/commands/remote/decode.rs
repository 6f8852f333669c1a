//! `cairn.v1` replies back into the engine's values, so that the commands'
//! own renderers print them: the reverse of `serve/convert.rs`. A value
//! the server sends that this CLI does not know (a newer server) is an
//! error naming it, never a guess.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use cairn_assets::FreshnessSla;
use cairn_catalog::{
    AttemptOutcome, AttemptRecord, CheckResultRecord, ColumnStats, CurrentVersion, FileRecord,
    MaterializationId, MaterializationMetrics, MaterializationRecord, NewCheckResult,
    NewMaterialization, RunId, UpstreamKind, UpstreamVersion,
};
use cairn_engine::{
    AssetDetails, AssetOutcome, AssetResult, AssetState, AssetStatus, BackfillCounts, BackfillId,
    CheckOutcome, ColumnNode, Committed, Decision, Health, LineageKind, Materialized,
    Neighbourhood, OverduePartition, PartitionStatus, PartitionSummary, PlannedUnit, RunReport,
    SlaBasis, SlaLevel, SlaReading, StaleCause, VersionText,
};
use cairn_proto::v1 as pb;

use crate::Failure;
use crate::commands::lineage::Around;

/// What the server sent that this CLI cannot read.
fn unknown(what: &str, value: &str) -> Failure {
    Failure::Runtime(format!(
        "the server sent {what} `{value}`, which this cairn does not know: the server runs another version of cairn; use the same version on both sides"
    ))
}

fn time(text: &str) -> Result<DateTime<Utc>, Failure> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| unknown("the time", text))
}

/// An optional time ("" for none).
fn opt_time(text: &str) -> Result<Option<DateTime<Utc>>, Failure> {
    (!text.is_empty()).then(|| time(text)).transpose()
}

/// An optional text ("" for none).
fn opt_text(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

fn state(text: &str) -> Result<AssetState, Failure> {
    Ok(match text {
        "fresh" => AssetState::Fresh,
        "stale" => AssetState::Stale,
        "never_materialized" => AssetState::NeverMaterialized,
        "failed" => AssetState::Failed,
        _ => return Err(unknown("the state", text)),
    })
}

/// A health ("" from a server before freshness SLAs: ok).
fn health(text: &str) -> Result<Health, Failure> {
    Ok(match text {
        "" | "ok" => Health::Ok,
        "warn" => Health::Warn,
        "sla_failed" => Health::SlaFailed,
        "failing_check" => Health::FailingCheck,
        "failed_run" => Health::FailedRun,
        _ => return Err(unknown("the health", text)),
    })
}

fn sla_reading(r: pb::SlaReading) -> Result<SlaReading, Failure> {
    Ok(SlaReading {
        level: match r.level.as_str() {
            "ok" => SlaLevel::Ok,
            "warn" => SlaLevel::Warn,
            "failed" => SlaLevel::Failed,
            other => return Err(unknown("the SLA level", other)),
        },
        basis: match r.basis.as_str() {
            "not_built" => SlaBasis::NotBuilt,
            "never_built" => SlaBasis::NeverBuilt,
            "stale" => SlaBasis::Stale,
            other => return Err(unknown("the SLA basis", other)),
        },
        since: opt_time(&r.since)?,
        age_secs: r.age_seconds,
    })
}

fn cause(c: pb::StaleCause) -> Result<StaleCause, Failure> {
    let name = c.name;
    Ok(match c.cause.as_str() {
        "never_materialized" => StaleCause::NeverMaterialized,
        "code_changed" => StaleCause::CodeChanged,
        "source_changed" => StaleCause::SourceChanged { name },
        "upstream_changed" => StaleCause::UpstreamChanged { name },
        "upstream_stale" => StaleCause::UpstreamStale { name },
        "upstream_never_materialized" => StaleCause::UpstreamNeverMaterialized { name },
        "inputs_changed" => StaleCause::InputsChanged,
        "earlier_partition_changed" => StaleCause::EarlierPartitionChanged,
        "earlier_partition_stale" => StaleCause::EarlierPartitionStale,
        "earlier_partition_missing" => StaleCause::EarlierPartitionMissing,
        other => return Err(unknown("the stale cause", other)),
    })
}

fn causes(list: Vec<pb::StaleCause>) -> Result<Vec<StaleCause>, Failure> {
    list.into_iter().map(cause).collect()
}

fn outcome(text: &str) -> Result<AttemptOutcome, Failure> {
    AttemptOutcome::parse(text).ok_or_else(|| unknown("the attempt outcome", text))
}

/// A committed version of `asset`.
fn check_result(c: pb::CheckResult) -> NewCheckResult {
    NewCheckResult {
        name: c.name,
        severity: c.severity,
        passed: c.passed,
        failing_rows: c.failing_rows,
        sample_json: c.sample_json,
        error: opt_text(c.error),
    }
}

fn current_version(asset: &str, v: pb::Version) -> Result<CurrentVersion, Failure> {
    Ok(CurrentVersion {
        id: MaterializationId(v.materialization_id),
        run_id: RunId(v.run_id),
        asset: asset.to_owned(),
        partition: v.partition,
        code_version: v.code_version,
        input_version: v.input_version,
        data_version: v.data_version,
        row_count: v.row_count,
        bytes_written: v.bytes_written,
        wall_ms: v.wall_ms,
        committed_at: time(&v.committed_at)?,
    })
}

/// The latest attempt of `asset` [`partition`], which failed.
fn failure(asset: &str, partition: &str, f: pb::Failure) -> Result<AttemptRecord, Failure> {
    Ok(AttemptRecord {
        run_id: RunId(f.run_id),
        asset: asset.to_owned(),
        partition: partition.to_owned(),
        outcome: AttemptOutcome::Failed,
        error: opt_text(f.error),
        at: time(&f.at)?,
    })
}

fn partition_status(asset: &str, u: pb::UnitStatus) -> Result<PartitionStatus, Failure> {
    let current = match u.current {
        Some(v) => Some(Arc::new(Committed {
            id: MaterializationId(v.materialization_id),
            run_id: v.run_id.into(),
            code_version: v.code_version.into(),
            input_version: VersionText::new(&v.input_version),
            data_version: VersionText::new(&v.data_version),
            row_count: v.row_count,
            bytes_written: v.bytes_written,
            wall_ms: v.wall_ms,
            committed_at: time(&v.committed_at)?,
        })),
        None => None,
    };
    Ok(PartitionStatus {
        state: state(&u.state)?,
        causes: causes(u.causes)?,
        input_version: opt_text(u.input_version),
        current,
        last_failure: u
            .last_failure
            .map(|f| failure(asset, &u.partition, f))
            .transpose()?,
        health: health(&u.health)?,
        sla: u.sla.map(sla_reading).transpose()?,
        key: u.partition,
    })
}

/// One asset's status.
fn asset_status(s: pb::AssetStatus) -> Result<AssetStatus, Failure> {
    let name = s.name;
    let partitions = match s.partitions {
        Some(p) => Some(PartitionSummary {
            total: count(p.total),
            fresh: count(p.fresh),
            stale: count(p.stale),
            missing: count(p.missing),
            failed: count(p.failed),
            rows: p.rows,
            last_committed_at: opt_time(&p.last_committed_at)?,
            stale_causes: p.stale_causes,
            sla_warn: count(p.sla_warn),
            sla_failed: count(p.sla_failed),
            most_overdue: p
                .most_overdue
                .map(|r| {
                    Ok::<_, Failure>(OverduePartition {
                        key: p.most_overdue_partition,
                        sla: sla_reading(r)?,
                    })
                })
                .transpose()?,
            list: p
                .list
                .into_iter()
                .map(|u| partition_status(&name, u))
                .collect::<Result<_, _>>()?,
        }),
        None => None,
    };
    Ok(AssetStatus {
        state: state(&s.state)?,
        causes: causes(s.causes)?,
        code_version: s.code_version,
        input_version: opt_text(s.input_version),
        current: s.current.map(|v| current_version(&name, v)).transpose()?,
        last_failure: s.last_failure.map(|f| failure(&name, "", f)).transpose()?,
        partitions,
        failing_checks: s.failing_checks,
        warning_checks: s.warning_checks,
        health: health(&s.health)?,
        freshness: s.freshness.map(|f| FreshnessSla {
            warn_after: f.warn_after_seconds.map(Duration::from_secs),
            fail_after: f.fail_after_seconds.map(Duration::from_secs),
        }),
        sla: s.sla.map(sla_reading).transpose()?,
        name,
    })
}

fn count(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// `Status`: every selected asset's status.
pub(crate) fn statuses(r: pb::StatusResponse) -> Result<Vec<AssetStatus>, Failure> {
    r.assets.into_iter().map(asset_status).collect()
}

fn metrics(m: pb::Metrics) -> MaterializationMetrics {
    MaterializationMetrics {
        rows_added: m.rows_added,
        rows_removed: m.rows_removed,
        columns: m
            .columns
            .into_iter()
            .map(|c| ColumnStats {
                name: c.name,
                null_count: c.null_count,
                min: c.min,
                max: c.max,
            })
            .collect(),
        cpu_seconds: m.cpu_seconds,
        datafusion_seconds: m.datafusion_seconds,
        output_rows: m.output_rows,
        bytes_scanned: m.bytes_scanned,
        spilled_bytes: m.spilled_bytes,
        bytes_read: m.bytes_read,
        read_requests: m.read_requests,
        objects_read: m.objects_read,
        bytes_written: m.bytes_written,
        write_requests: m.write_requests,
        other_requests: m.other_requests,
        peak_memory_bytes: m.peak_memory_bytes,
        cost_usd: m.cost_usd,
    }
}

/// An asset's details, and the URL of each of its current files by path
/// (`cairn show` prints URLs; only the server knows its storage).
pub(crate) fn details(
    d: pb::AssetDetails,
) -> Result<(AssetDetails, HashMap<String, String>), Failure> {
    let status = asset_status(d.status.unwrap_or_default())?;
    let name = status.name.clone();
    let urls = d
        .file_details
        .iter()
        .map(|f| (f.path.clone(), f.url.clone()))
        .collect();
    let current = match d.current {
        Some(v) => Some(MaterializationRecord {
            id: MaterializationId(v.materialization_id),
            body: NewMaterialization {
                run_id: RunId(v.run_id),
                asset: name.clone(),
                partition: v.partition,
                code_version: v.code_version,
                input_version: v.input_version,
                data_version: v.data_version,
                row_count: v.row_count,
                bytes_written: v.bytes_written,
                wall_ms: v.wall_ms,
                schema_json: d.schema_json,
                inputs: d
                    .inputs
                    .into_iter()
                    .map(|i| {
                        Ok(UpstreamVersion {
                            kind: UpstreamKind::parse(&i.kind)
                                .ok_or_else(|| unknown("the input kind", &i.kind))?,
                            name: i.name,
                            partition: i.partition,
                            data_version: i.data_version,
                            materialization: (i.materialization_id != 0)
                                .then_some(MaterializationId(i.materialization_id)),
                        })
                    })
                    .collect::<Result<_, Failure>>()?,
                files: d
                    .file_details
                    .into_iter()
                    .map(|f| FileRecord {
                        path: f.path,
                        size_bytes: f.size_bytes,
                        row_count: f.row_count,
                    })
                    .collect(),
                committed_at: time(&v.committed_at)?,
                metrics: d.metrics.map(metrics).unwrap_or_default(),
                checks: d.checks.into_iter().map(check_result).collect(),
            },
        }),
        None => None,
    };
    let details = AssetDetails {
        file: d.file,
        description: opt_text(d.description),
        owner: opt_text(d.owner),
        tags: d.tags,
        sql: d.sql,
        upstream: d.upstream,
        downstream: d.downstream,
        partitioning: opt_text(d.partitioning),
        reads: d
            .reads
            .into_iter()
            .map(|r| (r.upstream, r.reading))
            .collect(),
        declared_columns: d.declared_columns,
        current,
        history_metrics: d
            .history
            .iter()
            .map(|v| MaterializationMetrics {
                rows_added: v.rows_added,
                rows_removed: v.rows_removed,
                cost_usd: v.cost_usd.unwrap_or_default(),
                ..MaterializationMetrics::default()
            })
            .collect(),
        history: d
            .history
            .into_iter()
            .map(|v| current_version(&name, v))
            .collect::<Result<_, _>>()?,
        check_history: d
            .check_history
            .into_iter()
            .map(|c| {
                Ok::<_, Failure>(CheckResultRecord {
                    id: 0,
                    run_id: RunId(c.run_id),
                    asset: name.clone(),
                    partition: c.partition,
                    materialization: (c.materialization_id != 0)
                        .then_some(MaterializationId(c.materialization_id)),
                    at: time(&c.at)?,
                    result: check_result(c.result.unwrap_or_default()),
                })
            })
            .collect::<Result<_, _>>()?,
        last_attempt: d
            .last_attempt
            .map(|a| {
                Ok::<_, Failure>(AttemptRecord {
                    run_id: RunId(a.run_id),
                    outcome: outcome(&a.outcome)?,
                    asset: a.asset,
                    partition: a.partition,
                    error: opt_text(a.error),
                    at: time(&a.at)?,
                })
            })
            .transpose()?,
        status,
    };
    Ok((details, urls))
}

fn decision(text: &str) -> Result<Decision, Failure> {
    Ok(match text {
        "build" => Decision::Build,
        "build_unless_upstream_unchanged" => Decision::BuildUnlessUpstreamUnchanged,
        "forced" => Decision::Forced,
        "fresh" => Decision::Fresh,
        _ => return Err(unknown("the decision", text)),
    })
}

/// `Explain`: the plan, unit by unit.
pub(crate) fn plan(r: pb::ExplainResponse) -> Result<Vec<PlannedUnit>, Failure> {
    r.units
        .into_iter()
        .map(|u| {
            Ok(PlannedUnit {
                decision: decision(&u.decision)?,
                causes: causes(u.causes)?,
                last_failure: opt_text(u.last_failure),
                asset: u.asset,
                partition: u.partition,
            })
        })
        .collect()
}

/// `Lineage`: the graph around an asset, shown in the directions asked
/// for.
pub(crate) fn around(r: pb::LineageResponse, upstream: bool, downstream: bool) -> Around {
    let (upstream, downstream) = crate::commands::lineage::directions(upstream, downstream);
    Around {
        asset: r.asset,
        upstream,
        downstream,
        own_window: r.own_window.map(|w| (w.nearest, w.farthest)),
        nodes: Neighbourhood {
            upstream: r.upstream.into_iter().collect(),
            downstream: r.downstream.into_iter().collect(),
            edges: r.edges.into_iter().map(|e| (e.from, e.to)).collect(),
        },
        sources: r.sources.into_iter().collect(),
    }
}

/// `ColumnLineage`: a column's tree.
pub(crate) fn column_node(n: pb::ColumnNode) -> Result<ColumnNode, Failure> {
    Ok(ColumnNode {
        kind: match n.kind.as_str() {
            "" => None,
            "direct" => Some(LineageKind::Direct),
            "expression" => Some(LineageKind::Expression),
            "aggregate" => Some(LineageKind::Aggregate),
            "window" => Some(LineageKind::Window),
            "filter_or_join_key" => Some(LineageKind::FilterOrJoinKey),
            other => return Err(unknown("the lineage kind", other)),
        },
        table: n.table,
        column: n.column,
        is_source: n.is_source,
        is_dimension: n.is_dimension,
        earlier_partitions: n.earlier_partitions,
        shown_above: n.shown_above,
        upstream: n
            .upstream
            .into_iter()
            .map(column_node)
            .collect::<Result<_, _>>()?,
    })
}

fn check(c: pb::CheckResult) -> Result<CheckOutcome, Failure> {
    let severity = match c.severity.as_str() {
        "error" => "error",
        "warn" => "warn",
        other => return Err(unknown("the check severity", other)),
    };
    let sample = if c.sample_json.is_empty() {
        Vec::new()
    } else {
        serde_json::from_str(&c.sample_json)
            .map_err(|_| unknown("the failing rows", &c.sample_json))?
    };
    Ok(CheckOutcome {
        name: c.name,
        severity,
        passed: c.passed,
        failing_rows: c.failing_rows,
        sample,
        error: opt_text(c.error),
    })
}

fn checks(list: Vec<pb::CheckResult>) -> Result<Vec<CheckOutcome>, Failure> {
    list.into_iter().map(check).collect()
}

/// What happened to one unit of a run.
fn unit_result(u: pb::UnitResult) -> Result<AssetResult, Failure> {
    let outcome = match u.outcome.as_str() {
        "materialized" => {
            let m = u.materialized.unwrap_or_default();
            AssetOutcome::Materialized(Box::new(Materialized {
                id: MaterializationId(m.materialization_id),
                rows: m.rows,
                bytes_written: m.bytes_written,
                files: m.files,
                data_version: m.data_version,
                data_changed: m.data_changed,
                wall: Duration::from_nanos(m.wall_nanos),
                datafusion: Duration::from_nanos(m.datafusion_nanos),
                write: Duration::from_nanos(m.write_nanos),
                hashing: Duration::from_nanos(m.hashing_nanos),
                row_changes: Duration::from_nanos(m.row_changes_nanos),
                rows_added: m.rows_added,
                rows_removed: m.rows_removed,
                checks: checks(m.checks)?,
                metrics: m.metrics.map(metrics).unwrap_or_default(),
                schema: None,
            }))
        }
        "fresh" => AssetOutcome::Fresh {
            early_cutoff: u.early_cutoff,
        },
        "failed" => AssetOutcome::Failed {
            error: u.error,
            checks: checks(u.checks)?,
        },
        "skipped" => AssetOutcome::Skipped {
            upstream: u.upstream,
        },
        other => return Err(unknown("the unit outcome", other)),
    };
    Ok(AssetResult {
        asset: u.asset,
        partition: u.partition,
        outcome,
    })
}

/// A run's report, and for a backfill its id and counts.
pub(crate) fn run_report(r: pb::RunReport) -> Result<(RunReport, Option<BackfillCounts>), Failure> {
    let backfill = opt_text(r.backfill_id).map(|id| BackfillCounts {
        id: BackfillId(id),
        planned: count(r.planned),
        already_done: count(r.already_done),
    });
    let run = RunReport {
        run_id: opt_text(r.run_id).map(RunId),
        results: r
            .results
            .into_iter()
            .map(unit_result)
            .collect::<Result<_, _>>()?,
        wall: Duration::from_nanos(r.wall_nanos),
    };
    Ok((run, backfill))
}

/// A unit's line as the run streams it (`built`, `early_cutoff`, `fresh`,
/// `failed`, `skipped`): what the progress display prints. A built unit's
/// version details come with the report at the end; only its rows, bytes,
/// wall time and whether its data changed are filled here.
pub(crate) fn unit_event(e: &pb::RunEvent) -> Option<AssetResult> {
    let outcome = match e.event.as_str() {
        "built" => AssetOutcome::Materialized(Box::new(Materialized {
            id: MaterializationId(0),
            rows: e.rows,
            bytes_written: e.bytes,
            files: Vec::new(),
            data_version: String::new(),
            data_changed: !e.data_unchanged,
            wall: Duration::from_millis(e.wall_ms),
            datafusion: Duration::ZERO,
            write: Duration::ZERO,
            hashing: Duration::ZERO,
            row_changes: Duration::ZERO,
            rows_added: None,
            rows_removed: None,
            checks: Vec::new(),
            metrics: MaterializationMetrics::default(),
            schema: None,
        })),
        "early_cutoff" => AssetOutcome::Fresh { early_cutoff: true },
        "fresh" => AssetOutcome::Fresh {
            early_cutoff: false,
        },
        "failed" => AssetOutcome::Failed {
            error: e.error.clone(),
            checks: Vec::new(),
        },
        "skipped" => AssetOutcome::Skipped {
            upstream: e
                .error
                .strip_prefix("upstream ")
                .and_then(|rest| rest.strip_suffix(" failed"))
                .unwrap_or(&e.error)
                .to_owned(),
        },
        _ => return None,
    };
    Some(AssetResult {
        asset: e.asset.clone(),
        partition: e.partition.clone(),
        outcome,
    })
}

/// A `Tick` reply as the report `cairn tick` renders (the run is the
/// server's: it is queued there, not awaited here).
pub(super) fn tick(reply: pb::TickResponse) -> Result<cairn_engine::TickReport, Failure> {
    let time = |field: &str, text: &str| {
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|e| Failure::Runtime(format!("the server sent a bad {field} `{text}`: {e}")))
    };
    let condition = |name: &str| -> Result<&'static str, Failure> {
        Ok(match name {
            "cron" => "cron",
            "on_upstream_change" => "on_upstream_change",
            "on_missing" => "on_missing",
            "tick" => "tick",
            other => {
                return Err(Failure::Runtime(format!(
                    "the server sent an unknown condition `{other}`"
                )));
            }
        })
    };
    let mut conditions = Vec::with_capacity(reply.conditions.len());
    for c in reply.conditions {
        conditions.push(cairn_engine::ConditionResult {
            condition: condition(&c.condition)?,
            due: if c.due.is_empty() {
                None
            } else {
                Some(time("due", &c.due)?)
            },
            asset: c.asset,
            fired: c.fired,
            reason: c.reason,
        });
    }
    Ok(cairn_engine::TickReport {
        at: time("at", &reply.at)?,
        conditions,
        requested: reply
            .requested
            .into_iter()
            .map(|u| (u.asset, u.partition))
            .collect(),
        run_id: (!reply.run_id.is_empty()).then_some(cairn_engine::RunId(reply.run_id)),
        attached: reply.attached,
        conflict: reply.conflict,
    })
}
