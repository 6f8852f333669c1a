//! Engine values as `cairn.v1` messages (the server's wire types).

use cairn_catalog::{AttemptRecord, CurrentVersion, MaterializationMetrics};
use cairn_engine::{
    AssetDetails, AssetOutcome, AssetState, AssetStatus, BackfillCounts, CheckOutcome, Decision,
    EngineError, Health, PlannedUnit, RunReport, RunUpdate, SlaReading, StaleCause, UnitOutcome,
    UpdateKind, Workspace,
};
use cairn_proto::v1 as pb;

use crate::commands::wire;

fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn state(s: AssetState) -> String {
    wire::tag(&wire::AssetState::from(s))
}

fn health(h: Health) -> String {
    wire::tag(&wire::Health::from(h))
}

fn sla_reading(r: &SlaReading) -> pb::SlaReading {
    pb::SlaReading {
        level: wire::tag(&wire::SlaLevel::from(r.level)),
        basis: wire::tag(&wire::SlaBasis::from(r.basis)),
        since: r.since.map(time).unwrap_or_default(),
        age_seconds: r.age_secs,
    }
}

fn cause(c: &StaleCause) -> pb::StaleCause {
    let name = match c {
        StaleCause::SourceChanged { name }
        | StaleCause::UpstreamChanged { name }
        | StaleCause::UpstreamStale { name }
        | StaleCause::UpstreamNeverMaterialized { name } => name.clone(),
        _ => String::new(),
    };
    pb::StaleCause {
        cause: wire::tag(&wire::StaleCause::from(c)),
        name,
        text: c.to_string(),
    }
}

fn version(v: &CurrentVersion) -> pb::Version {
    pb::Version {
        materialization_id: v.id.0,
        run_id: v.run_id.0.clone(),
        partition: v.partition.clone(),
        code_version: v.code_version.clone(),
        input_version: v.input_version.clone(),
        data_version: v.data_version.clone(),
        row_count: v.row_count,
        bytes_written: v.bytes_written,
        wall_ms: v.wall_ms,
        committed_at: time(v.committed_at),
        rows_added: None,
        rows_removed: None,
        cost_usd: None,
    }
}

/// A version with what it measured.
fn measured_version(v: &CurrentVersion, m: &MaterializationMetrics) -> pb::Version {
    pb::Version {
        rows_added: m.rows_added,
        rows_removed: m.rows_removed,
        cost_usd: Some(m.cost_usd),
        ..version(v)
    }
}

/// One check's result.
fn check_result(c: &cairn_catalog::NewCheckResult) -> pb::CheckResult {
    pb::CheckResult {
        name: c.name.clone(),
        severity: c.severity.clone(),
        passed: c.passed,
        failing_rows: c.failing_rows,
        sample_json: c.sample_json.clone(),
        error: c.error.clone().unwrap_or_default(),
    }
}

fn failure(f: &AttemptRecord) -> pb::Failure {
    let error = f.error.clone().unwrap_or_default();
    pb::Failure {
        run_id: f.run_id.0.clone(),
        failed_checks: cairn_engine::failed_checks(&error)
            .unwrap_or_default()
            .to_owned(),
        error,
        at: time(f.at),
    }
}

fn asset_status(s: &AssetStatus, with_partitions: bool) -> pb::AssetStatus {
    pb::AssetStatus {
        name: s.name.clone(),
        state: state(s.state),
        causes: s.causes.iter().map(cause).collect(),
        code_version: s.code_version.clone(),
        current: s.current.as_ref().map(version),
        last_failure: s.last_failure.as_ref().map(failure),
        partitions: s.partitions.as_ref().map(|p| pb::PartitionSummary {
            total: p.total as u64,
            fresh: p.fresh as u64,
            stale: p.stale as u64,
            missing: p.missing as u64,
            failed: p.failed as u64,
            rows: p.rows,
            last_committed_at: p.last_committed_at.map(time).unwrap_or_default(),
            stale_causes: p.stale_causes.clone(),
            list: if with_partitions {
                p.list
                    .iter()
                    .map(|u| pb::UnitStatus {
                        partition: u.key.clone(),
                        state: state(u.state),
                        causes: u.causes.iter().map(cause).collect(),
                        current: u
                            .current
                            .as_ref()
                            .map(|c| version(&c.to_current_version(&s.name, &u.key))),
                        last_failure: u.last_failure.as_ref().map(failure),
                        input_version: u.input_version.clone().unwrap_or_default(),
                        health: health(u.health),
                        sla: u.sla.as_ref().map(sla_reading),
                    })
                    .collect()
            } else {
                Vec::new()
            },
            sla_warn: p.sla_warn as u64,
            sla_failed: p.sla_failed as u64,
            most_overdue_partition: p
                .most_overdue
                .as_ref()
                .map(|o| o.key.clone())
                .unwrap_or_default(),
            most_overdue: p.most_overdue.as_ref().map(|o| sla_reading(&o.sla)),
        }),
        failing_checks: s.failing_checks.clone(),
        warning_checks: s.warning_checks.clone(),
        input_version: s.input_version.clone().unwrap_or_default(),
        health: health(s.health),
        freshness: s.freshness.map(|f| pb::Freshness {
            warn_after_seconds: f.warn_after.map(|d| d.as_secs()),
            fail_after_seconds: f.fail_after.map(|d| d.as_secs()),
        }),
        sla: s.sla.as_ref().map(sla_reading),
    }
}

/// `Status`: the same counts and states `cairn status --format json` gives.
pub(super) fn status_response(statuses: &[AssetStatus], partitions: bool) -> pb::StatusResponse {
    let not_fresh = statuses
        .iter()
        .filter(|s| s.state != AssetState::Fresh)
        .count();
    let (sla_failed, sla_warn) = statuses
        .iter()
        .map(AssetStatus::sla_counts)
        .fold((0, 0), |(f, w), (sf, sw)| (f + sf, w + sw));
    pb::StatusResponse {
        fresh: (statuses.len() - not_fresh) as u64,
        not_fresh: not_fresh as u64,
        failing_checks: statuses.iter().map(|s| s.failing_checks.len() as u64).sum(),
        sla_failed: sla_failed as u64,
        sla_warn: sla_warn as u64,
        assets: statuses
            .iter()
            .map(|s| asset_status(s, partitions))
            .collect(),
        undelivered_alerts: None,
    }
}

/// What a materialization measured and cost.
fn metrics(m: &MaterializationMetrics) -> pb::Metrics {
    pb::Metrics {
        rows_added: m.rows_added,
        rows_removed: m.rows_removed,
        columns: m
            .columns
            .iter()
            .map(|c| pb::ColumnStats {
                name: c.name.clone(),
                null_count: c.null_count,
                min: c.min.clone(),
                max: c.max.clone(),
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

/// `GetAsset`: everything `cairn show` prints; `file_url` turns a stored
/// file's path into its URL.
pub(super) fn asset_details(
    d: &AssetDetails,
    file_url: &dyn Fn(&str) -> String,
) -> pb::AssetDetails {
    let body = d.current.as_ref().map(|m| &m.body);
    pb::AssetDetails {
        // With every partition: `cairn show --format json` lists them.
        status: Some(asset_status(&d.status, true)),
        file: d.file.clone(),
        description: d.description.clone().unwrap_or_default(),
        owner: d.owner.clone().unwrap_or_default(),
        tags: d.tags.clone(),
        sql: d.sql.clone(),
        upstream: d.upstream.clone(),
        downstream: d.downstream.clone(),
        partitioning: d.partitioning.clone().unwrap_or_default(),
        declared_columns: d.declared_columns.clone(),
        current: d.current.as_ref().map(|m| pb::Version {
            materialization_id: m.id.0,
            run_id: m.body.run_id.0.clone(),
            partition: m.body.partition.clone(),
            code_version: m.body.code_version.clone(),
            input_version: m.body.input_version.clone(),
            data_version: m.body.data_version.clone(),
            row_count: m.body.row_count,
            bytes_written: m.body.bytes_written,
            wall_ms: m.body.wall_ms,
            committed_at: time(m.body.committed_at),
            rows_added: m.body.metrics.rows_added,
            rows_removed: m.body.metrics.rows_removed,
            cost_usd: Some(m.body.metrics.cost_usd),
        }),
        inputs: body
            .map(|b| {
                b.inputs
                    .iter()
                    .map(|i| pb::Input {
                        name: i.name.clone(),
                        kind: i.kind.as_str().to_owned(),
                        partition: i.partition.clone(),
                        data_version: i.data_version.clone(),
                        materialization_id: i.materialization.map(|m| m.0).unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        files: body
            .map(|b| b.files.iter().map(|f| f.path.clone()).collect())
            .unwrap_or_default(),
        checks: body
            .map(|b| b.checks.iter().map(check_result).collect())
            .unwrap_or_default(),
        history: d
            .history
            .iter()
            .zip(&d.history_metrics)
            .map(|(v, m)| measured_version(v, m))
            .collect(),
        check_history: d
            .check_history
            .iter()
            .map(|c| pb::CheckRun {
                run_id: c.run_id.0.clone(),
                partition: c.partition.clone(),
                materialization_id: c.materialization.map(|m| m.0).unwrap_or_default(),
                at: time(c.at),
                result: Some(check_result(&c.result)),
            })
            .collect(),
        reads: d
            .reads
            .iter()
            .map(|(upstream, reading)| pb::Read {
                upstream: upstream.clone(),
                reading: reading.clone(),
            })
            .collect(),
        file_details: body
            .map(|b| {
                b.files
                    .iter()
                    .map(|f| pb::File {
                        path: f.path.clone(),
                        size_bytes: f.size_bytes,
                        row_count: f.row_count,
                        url: file_url(&f.path),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        schema_json: body.map(|b| b.schema_json.clone()).unwrap_or_default(),
        metrics: body.map(|b| metrics(&b.metrics)),
        last_attempt: d.last_attempt.as_ref().map(|a| pb::Attempt {
            run_id: a.run_id.0.clone(),
            asset: a.asset.clone(),
            partition: a.partition.clone(),
            outcome: a.outcome.as_str().to_owned(),
            error: a.error.clone().unwrap_or_default(),
            at: time(a.at),
        }),
    }
}

/// `Lineage`: the nodes upstream and/or downstream of an asset and the
/// edges between them (both directions when neither is asked for), as
/// `cairn lineage` finds them.
pub(super) fn lineage(
    ws: &Workspace,
    req: &pb::LineageRequest,
) -> Result<pb::LineageResponse, EngineError> {
    let around = crate::commands::lineage::around(ws, &req.asset, req.upstream, req.downstream)?;
    Ok(pb::LineageResponse {
        asset: around.asset,
        upstream: around.nodes.upstream.into_iter().collect(),
        downstream: around.nodes.downstream.into_iter().collect(),
        edges: around
            .nodes
            .edges
            .into_iter()
            .map(|(from, to)| pb::Edge { from, to })
            .collect(),
        sources: around.sources.into_iter().collect(),
        own_window: around
            .own_window
            .map(|(nearest, farthest)| pb::PeriodsBack { nearest, farthest }),
    })
}

/// `Graph`: every source and asset as defined, in dependency order.
pub(super) fn graph(ws: &Workspace) -> pb::GraphResponse {
    let project = ws.project();
    let nodes = ws
        .graph()
        .order()
        .filter_map(|name| {
            if let Some(asset) = project.assets.get(name) {
                Some(pb::GraphNode {
                    name: name.to_owned(),
                    kind: "asset".to_owned(),
                    file: asset.file.display().to_string(),
                    line: 1,
                    description: asset.description.clone().unwrap_or_default(),
                    owner: asset.owner.clone().unwrap_or_default(),
                    tags: asset.tags.clone(),
                    upstream: asset.upstream.clone(),
                    partitioning: asset
                        .partitions
                        .as_ref()
                        .map(|p| p.describe())
                        .unwrap_or_default(),
                    checks: asset.checks.iter().map(|c| c.name.clone()).collect(),
                    automation: asset
                        .automation
                        .as_ref()
                        .map(describe_automation)
                        .unwrap_or_default(),
                })
            } else {
                project.sources.get(name).map(|source| pb::GraphNode {
                    name: name.to_owned(),
                    kind: "source".to_owned(),
                    file: source.declared_in.display().to_string(),
                    line: source.line as u64,
                    description: source.description.clone().unwrap_or_default(),
                    owner: source.owner.clone().unwrap_or_default(),
                    partitioning: source
                        .partitions
                        .as_ref()
                        .map(|p| p.describe())
                        .unwrap_or_default(),
                    ..Default::default()
                })
            }
        })
        .collect();
    pb::GraphResponse { nodes }
}

/// An asset's `[automation]` in a few words: `cron "0 6 * * *"
/// (Europe/Berlin), on upstream change, on missing, lag 10m`.
fn describe_automation(a: &cairn_assets::Automation) -> String {
    let mut parts = Vec::new();
    if let Some(cron) = &a.cron {
        parts.push(format!("cron \"{}\" ({})", cron.pattern, cron.timezone));
    }
    if a.on_upstream_change {
        parts.push("on upstream change".to_owned());
    }
    if a.on_missing {
        parts.push("on missing".to_owned());
    }
    if !a.lag.is_zero() {
        parts.push(format!("lag {}s", a.lag.as_secs()));
    }
    parts.join(", ")
}

/// `Explain`.
pub(super) fn explain(units: &[PlannedUnit]) -> pb::ExplainResponse {
    let count = |d: Decision| units.iter().filter(|u| u.decision == d).count() as u64;
    pb::ExplainResponse {
        build: count(Decision::Build),
        build_unless_upstream_unchanged: count(Decision::BuildUnlessUpstreamUnchanged),
        forced: count(Decision::Forced),
        fresh: count(Decision::Fresh),
        units: units
            .iter()
            .map(|u| pb::PlannedUnit {
                asset: u.asset.clone(),
                partition: u.partition.clone(),
                decision: wire::tag(&wire::Decision::from(u.decision)),
                causes: u.causes.iter().map(cause).collect(),
                last_failure: u.last_failure.clone().unwrap_or_default(),
            })
            .collect(),
    }
}

/// `ColumnLineage`.
pub(super) fn column_node(n: &cairn_engine::ColumnNode) -> pb::ColumnNode {
    use cairn_engine::LineageKind;
    pb::ColumnNode {
        table: n.table.clone(),
        column: n.column.clone(),
        kind: match n.kind {
            None => "",
            Some(LineageKind::Direct) => "direct",
            Some(LineageKind::Expression) => "expression",
            Some(LineageKind::Aggregate) => "aggregate",
            Some(LineageKind::Window) => "window",
            Some(LineageKind::FilterOrJoinKey) => "filter_or_join_key",
        }
        .to_owned(),
        is_source: n.is_source,
        is_dimension: n.is_dimension,
        earlier_partitions: n.earlier_partitions,
        upstream: n.upstream.iter().map(column_node).collect(),
        shown_above: n.shown_above,
    }
}

fn figures(f: &cairn_engine::CostFigures) -> pb::CostFigures {
    pb::CostFigures {
        materializations: f.materializations,
        wall_seconds: f.wall_seconds,
        cpu_seconds: f.cpu_seconds,
        bytes_read: f.bytes_read,
        bytes_written: f.bytes_written,
        requests: f.requests,
        cost_usd: f.cost_usd,
    }
}

/// `Cost`.
pub(super) fn cost(costs: &[cairn_engine::AssetCost]) -> pb::CostResponse {
    pb::CostResponse {
        assets: costs
            .iter()
            .map(|c| pb::AssetCost {
                asset: c.asset.clone(),
                own: Some(figures(&c.own)),
                rollup: c.rollup.as_ref().map(figures),
            })
            .collect(),
    }
}

/// `AuditLog`.
pub(super) fn audit_log(entries: &[cairn_catalog::AuditEntry]) -> pb::AuditLogResponse {
    pb::AuditLogResponse {
        entries: entries
            .iter()
            .map(|e| pb::AuditEntry {
                id: e.id,
                at: time(e.entry.at),
                principal: e.entry.principal.clone(),
                host: e.entry.host.clone(),
                git_commit: e.entry.git_commit.clone().unwrap_or_default(),
                action: e.entry.action.clone(),
                target: e.entry.target.clone(),
                details_json: e.entry.details.clone(),
            })
            .collect(),
    }
}

/// `Provenance`.
pub(super) fn provenance(p: &cairn_engine::Provenance) -> pb::ProvenanceNode {
    pb::ProvenanceNode {
        name: p.name.clone(),
        kind: p.kind.to_owned(),
        partition: p.partition.clone(),
        data_version: p.data_version.clone(),
        materialization_id: p.materialization.map(|m| m.0).unwrap_or_default(),
        run_id: p.run.as_ref().map(|r| r.id.0.clone()).unwrap_or_default(),
        run_user: p.run.as_ref().map(|r| r.user.clone()).unwrap_or_default(),
        committed_at: p.committed_at.map(time).unwrap_or_default(),
        code_version: p.code_version.clone().unwrap_or_default(),
        rows: p.rows.unwrap_or_default(),
        files: p.files.clone(),
        expired: p.expired,
        inputs: p.inputs.iter().map(provenance).collect(),
        shown_above: p.shown_above,
    }
}

/// A run as recorded, with the outcome of each unit it attempted.
pub(super) fn run(r: &cairn_catalog::RunRecord, attempts: &[AttemptRecord]) -> pb::Run {
    pb::Run {
        run_id: r.id.0.clone(),
        status: r.status.as_str().to_owned(),
        command: r.command.clone(),
        trigger: r.trigger.clone(),
        user: r.user.clone(),
        host: r.host.clone(),
        // A queued run's recorded start is its queueing time until it starts.
        started_at: if r.queued_at == Some(r.started_at) {
            String::new()
        } else {
            time(r.started_at)
        },
        queued_at: r.queued_at.map(time).unwrap_or_default(),
        finished_at: r.finished_at.map(time).unwrap_or_default(),
        error: r.error.clone().unwrap_or_default(),
        units: attempts
            .iter()
            .map(|a| pb::UnitOutcome {
                asset: a.asset.clone(),
                partition: a.partition.clone(),
                outcome: a.outcome.as_str().to_owned(),
                error: a.error.clone().unwrap_or_default(),
            })
            .collect(),
    }
}

/// `ListRuns`: the runs as recorded (their units come with `GetRun`).
pub(super) fn runs(runs: &[cairn_catalog::RunRecord]) -> pb::ListRunsResponse {
    pb::ListRunsResponse {
        runs: runs.iter().map(|r| run(r, &[])).collect(),
    }
}

/// One update of a run, as `WatchRun` streams it; the `planned` and
/// `report` events only when the watcher asked for `reports`.
pub(super) fn run_event(u: &RunUpdate, reports: bool) -> Option<pb::RunEvent> {
    let mut e = pb::RunEvent {
        run_id: u.run_id.0.clone(),
        at: time(u.at),
        ..pb::RunEvent::default()
    };
    let unit = |e: &mut pb::RunEvent, asset: &str, partition: &str| {
        e.asset = asset.to_owned();
        e.partition = partition.to_owned();
    };
    e.event = match &u.kind {
        UpdateKind::Queued => "queued",
        UpdateKind::Started => "started",
        UpdateKind::Planned { .. } | UpdateKind::Report { .. } if !reports => return None,
        UpdateKind::Planned { units } => {
            e.planned = units
                .iter()
                .map(|(asset, partition)| pb::UnitRef {
                    asset: asset.clone(),
                    partition: partition.clone(),
                })
                .collect();
            "planned"
        }
        UpdateKind::Report { run, backfill } => {
            e.report = Some(run_report(run, backfill.as_ref()));
            "report"
        }
        UpdateKind::UnitStarted { asset, partition } => {
            unit(&mut e, asset, partition);
            "unit_started"
        }
        UpdateKind::UnitRetrying {
            asset,
            partition,
            message,
        } => {
            unit(&mut e, asset, partition);
            e.error = message.clone();
            "retrying"
        }
        UpdateKind::UnitFinished {
            asset,
            partition,
            outcome,
        } => {
            unit(&mut e, asset, partition);
            match outcome {
                UnitOutcome::Built {
                    rows,
                    bytes,
                    wall,
                    data_changed,
                } => {
                    e.data_unchanged = *data_changed == Some(false);
                    e.rows = rows.unwrap_or_default();
                    e.bytes = bytes.unwrap_or_default();
                    e.wall_ms = wall
                        .map(|w| u64::try_from(w.as_millis()).unwrap_or(u64::MAX))
                        .unwrap_or_default();
                    "built"
                }
                UnitOutcome::EarlyCutoff => "early_cutoff",
                UnitOutcome::Fresh => "fresh",
                UnitOutcome::Failed { error } => {
                    e.error = error.clone();
                    "failed"
                }
                UnitOutcome::Skipped { upstream } => {
                    e.error = format!("upstream {upstream} failed");
                    "skipped"
                }
            }
        }
        UpdateKind::Finished { status, error } => {
            e.status = status.as_str().to_owned();
            e.error = error.clone().unwrap_or_default();
            "finished"
        }
    }
    .to_owned();
    Some(e)
}

/// A check's outcome as a run (or `cairn check`) evaluated it.
fn check_outcome(c: &CheckOutcome) -> pb::CheckResult {
    pb::CheckResult {
        name: c.name.clone(),
        severity: c.severity.to_owned(),
        passed: c.passed,
        failing_rows: c.failing_rows,
        sample_json: serde_json::Value::Array(c.sample.clone()).to_string(),
        error: c.error.clone().unwrap_or_default(),
    }
}

fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A run's report (the `report` event of `WatchRun`).
fn run_report(run: &RunReport, backfill: Option<&BackfillCounts>) -> pb::RunReport {
    pb::RunReport {
        run_id: run.run_id.as_ref().map(|r| r.0.clone()).unwrap_or_default(),
        results: run
            .results
            .iter()
            .map(|r| {
                let mut u = pb::UnitResult {
                    asset: r.asset.clone(),
                    partition: r.partition.clone(),
                    ..pb::UnitResult::default()
                };
                // The tags of the CLI's JSON (`wire::AssetOutcome`).
                u.outcome = match &r.outcome {
                    AssetOutcome::Materialized(_) => "materialized",
                    AssetOutcome::Fresh { .. } => "fresh",
                    AssetOutcome::Failed { .. } => "failed",
                    AssetOutcome::Skipped { .. } => "skipped",
                }
                .to_owned();
                match &r.outcome {
                    AssetOutcome::Materialized(m) => {
                        u.materialized = Some(pb::Materialized {
                            materialization_id: m.id.0,
                            rows: m.rows,
                            bytes_written: m.bytes_written,
                            files: m.files.clone(),
                            data_version: m.data_version.clone(),
                            data_changed: m.data_changed,
                            wall_nanos: nanos(m.wall),
                            datafusion_nanos: nanos(m.datafusion),
                            write_nanos: nanos(m.write),
                            hashing_nanos: nanos(m.hashing),
                            row_changes_nanos: nanos(m.row_changes),
                            rows_added: m.rows_added,
                            rows_removed: m.rows_removed,
                            checks: m.checks.iter().map(check_outcome).collect(),
                            metrics: Some(metrics(&m.metrics)),
                        });
                    }
                    AssetOutcome::Fresh { early_cutoff } => u.early_cutoff = *early_cutoff,
                    AssetOutcome::Failed { error, checks } => {
                        u.error = error.clone();
                        u.checks = checks.iter().map(check_outcome).collect();
                    }
                    AssetOutcome::Skipped { upstream } => u.upstream = upstream.clone(),
                }
                u
            })
            .collect(),
        wall_nanos: nanos(run.wall),
        backfill_id: backfill.map(|b| b.id.0.clone()).unwrap_or_default(),
        planned: backfill.map_or(0, |b| b.planned as u64),
        already_done: backfill.map_or(0, |b| b.already_done as u64),
    }
}

/// `Checks`: the run that recorded the results and each unit's checks.
pub(super) fn checks(
    run_id: Option<&cairn_engine::RunId>,
    reports: &[cairn_engine::CheckReport],
) -> pb::ChecksResponse {
    pb::ChecksResponse {
        run_id: run_id.map(|r| r.0.clone()).unwrap_or_default(),
        failing: reports
            .iter()
            .flat_map(|r| &r.checks)
            .filter(|c| !c.passed)
            .count() as u64,
        results: reports
            .iter()
            .map(|r| pb::AssetChecks {
                asset: r.asset.clone(),
                partition: r.partition.clone(),
                checks: r.checks.iter().map(check_outcome).collect(),
            })
            .collect(),
    }
}

/// What the server sends, read back by `cairn --server` (the
/// `commands::remote::decode` module), must render exactly what the local
/// command renders: every field of every reply the CLI prints, on a
/// project in every state.
/// `Tick`: what the evaluation found and requested.
pub(super) fn tick(r: &cairn_engine::TickReport) -> pb::TickResponse {
    pb::TickResponse {
        at: time(r.at),
        conditions: r
            .conditions
            .iter()
            .map(|c| pb::TickCondition {
                asset: c.asset.clone(),
                condition: c.condition.to_owned(),
                fired: c.fired,
                due: c.due.map(time).unwrap_or_default(),
                reason: c.reason.clone(),
            })
            .collect(),
        requested: r
            .requested
            .iter()
            .map(|(asset, partition)| pb::TickUnit {
                asset: asset.clone(),
                partition: partition.clone(),
            })
            .collect(),
        run_id: r.run_id.as_ref().map(|id| id.0.clone()).unwrap_or_default(),
        attached: r.attached,
        conflict: r.conflict,
    }
}

#[cfg(test)]
mod round_trip {
    use cairn_engine::{Health, MaterializeOptions, NoProgress, PartitionFilter, Workspace};
    use cairn_proto::v1 as pb;

    use crate::commands::remote::decode;
    use crate::commands::testing::{json, open, rendered, runtime, shop};
    use crate::commands::{lineage, materialize, show};

    fn options(force: bool) -> MaterializeOptions {
        MaterializeOptions {
            selection: Vec::new(),
            force,
            jobs: 1,
            command: "cairn materialize".to_owned(),
            partitions: PartitionFilter::All,
            backfill: None,
        }
    }

    fn sent<T>(value: Result<T, crate::Failure>) -> T {
        value.unwrap_or_else(|_| panic!("the reply could not be read back"))
    }

    /// Statuses (with every partition), details and plans come back equal.
    #[test]
    fn freshness_slas_and_health_round_trip() {
        let dir = shop();
        let with_sla = |rel: &str, before: &str, sla: &str| {
            let path = dir.path().join(rel);
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
            let text = text.replacen(before, &format!("{sla}{before}"), 1);
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        };
        let sla = "--- [freshness]\n--- warn_after = \"2h\"\n--- fail_after = \"6h\"\n";
        with_sla("assets/daily.sql", "--- [partitions]", sla);
        with_sla("assets/total.sql", "select", sla);
        with_sla(
            "assets/top.sql",
            "select",
            "--- [freshness]\n--- warn_after = \"1h\"\n",
        );
        let ws = open(dir.path());
        let statuses = ws.status(&[]).unwrap_or_else(|e| panic!("{e}"));
        let healths: Vec<(&str, Health)> = statuses
            .iter()
            .map(|s| (s.name.as_str(), s.health))
            .collect();
        assert!(
            healths.contains(&("daily", Health::SlaFailed)),
            "{healths:?}"
        );
        assert!(healths.contains(&("top", Health::Warn)), "{healths:?}");
        let back = sent(decode::statuses(super::status_response(&statuses, true)));
        assert_eq!(back, statuses);
    }

    #[test]
    fn statuses_details_and_plans() {
        let dir = shop();
        let ws = open(dir.path());
        let statuses = ws.status(&[]).unwrap_or_else(|e| panic!("{e}"));
        let back = sent(decode::statuses(super::status_response(&statuses, true)));
        assert_eq!(back, statuses);
        for name in ws.graph().assets_in_order() {
            let d = ws.details(name).unwrap_or_else(|e| panic!("{e}"));
            let url = |path: &str| ws.file_url(path);
            let (back, urls) = sent(decode::details(super::asset_details(&d, &url)));
            let remote_url = |path: &str| urls.get(path).cloned().unwrap_or_default();
            assert_eq!(
                rendered(|out| show::render_text(&back, &remote_url, out)),
                rendered(|out| show::render_text(&d, &url, out)),
                "{name}"
            );
            assert_eq!(
                json(|out| show::render_json(&back, out)),
                json(|out| show::render_json(&d, out)),
                "{name}"
            );
        }
        for force in [false, true] {
            let units = ws
                .explain(&options(force))
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(sent(decode::plan(super::explain(&units))), units);
        }
    }

    /// The graph around every node, in each direction.
    #[test]
    fn lineage() {
        let dir = shop();
        let ws = open(dir.path());
        let names: Vec<String> = ws.graph().order().map(str::to_owned).collect();
        for name in &names {
            for (upstream, downstream) in [(false, false), (true, false), (false, true)] {
                let local = lineage::around(&ws, name, upstream, downstream)
                    .unwrap_or_else(|e| panic!("{e}"));
                let request = pb::LineageRequest {
                    asset: name.clone(),
                    upstream,
                    downstream,
                };
                let reply = super::lineage(&ws, &request).unwrap_or_else(|e| panic!("{e}"));
                let back = decode::around(reply, upstream, downstream);
                assert_eq!(
                    rendered(|out| lineage::render_text(&back, out)),
                    rendered(|out| lineage::render_text(&local, out)),
                    "{name}"
                );
                assert_eq!(
                    json(|out| lineage::render_json(&back, out)),
                    json(|out| lineage::render_json(&local, out)),
                    "{name}"
                );
            }
        }
    }

    /// A run with materialized (with checks and row changes), fresh and
    /// failed (with failing checks) units: the report renders the same.
    #[test]
    fn run_reports() {
        let dir = shop();
        let ws: Workspace = open(dir.path());
        let report = runtime()
            .block_on(ws.materialize(&options(false), &NoProgress))
            .unwrap_or_else(|e| panic!("{e}"));
        let (back, backfill) = sent(decode::run_report(super::run_report(&report, None)));
        assert!(backfill.is_none());
        assert_eq!(
            json(|out| materialize::render_json(&back, None, out)),
            json(|out| materialize::render_json(&report, None, out))
        );
        assert_eq!(
            rendered(|out| materialize::render_text(&back, out)),
            rendered(|out| materialize::render_text(&report, out))
        );
    }
}
