//! The CLI's JSON wire types shared by several commands: what
//! `--format json` prints, owned here and built from the engine's and
//! the catalog's values by explicit conversion, so that a field added to
//! an engine or catalog struct does not change the output. Each command
//! keeps its own top-level shapes next to its `render_json`.
//!
//! The shapes are frozen: outside tools parse them. Field names, order,
//! `null` versus absent and enum tags are those the engine's types had
//! when the CLI serialized them directly (e.g. durations as
//! `{"secs": .., "nanos": ..}`); the JSON snapshot tests of each command
//! pin them.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// A duration as `std::time::Duration` serializes: whole seconds and the
/// nanoseconds past them.
#[derive(Serialize)]
pub(crate) struct Duration {
    secs: u64,
    nanos: u32,
}

impl From<std::time::Duration> for Duration {
    fn from(d: std::time::Duration) -> Self {
        Duration {
            secs: d.as_secs(),
            nanos: d.subsec_nanos(),
        }
    }
}

/// Why an asset (or a partition, or a planned unit) is not fresh.
#[derive(Serialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub(crate) enum StaleCause<'a> {
    NeverMaterialized,
    CodeChanged,
    SourceChanged { name: &'a str },
    UpstreamChanged { name: &'a str },
    UpstreamStale { name: &'a str },
    UpstreamNeverMaterialized { name: &'a str },
    InputsChanged,
    EarlierPartitionChanged,
    EarlierPartitionStale,
    EarlierPartitionMissing,
}

impl<'a> From<&'a cairn_engine::StaleCause> for StaleCause<'a> {
    fn from(c: &'a cairn_engine::StaleCause) -> Self {
        use cairn_engine::StaleCause as E;
        match c {
            E::NeverMaterialized => StaleCause::NeverMaterialized,
            E::CodeChanged => StaleCause::CodeChanged,
            E::SourceChanged { name } => StaleCause::SourceChanged { name },
            E::UpstreamChanged { name } => StaleCause::UpstreamChanged { name },
            E::UpstreamStale { name } => StaleCause::UpstreamStale { name },
            E::UpstreamNeverMaterialized { name } => StaleCause::UpstreamNeverMaterialized { name },
            E::InputsChanged => StaleCause::InputsChanged,
            E::EarlierPartitionChanged => StaleCause::EarlierPartitionChanged,
            E::EarlierPartitionStale => StaleCause::EarlierPartitionStale,
            E::EarlierPartitionMissing => StaleCause::EarlierPartitionMissing,
        }
    }
}

/// The JSON name of a value serialized as a string (a unit variant), or of
/// the `cause` tag of a [`StaleCause`]: other wire formats (the gRPC API)
/// use the very names the JSON output does.
pub(crate) fn tag(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(serde_json::Value::Object(o)) => o
            .get("cause")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        _ => String::new(),
    }
}

/// The causes, in order.
pub(crate) fn causes(causes: &[cairn_engine::StaleCause]) -> Vec<StaleCause<'_>> {
    causes.iter().map(StaleCause::from).collect()
}

/// The state of an asset or a partition.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AssetState {
    Fresh,
    Stale,
    NeverMaterialized,
    Failed,
}

impl From<cairn_engine::AssetState> for AssetState {
    fn from(s: cairn_engine::AssetState) -> Self {
        use cairn_engine::AssetState as E;
        match s {
            E::Fresh => AssetState::Fresh,
            E::Stale => AssetState::Stale,
            E::NeverMaterialized => AssetState::NeverMaterialized,
            E::Failed => AssetState::Failed,
        }
    }
}

/// How healthy a unit or an asset is.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Health {
    Ok,
    Warn,
    SlaFailed,
    FailingCheck,
    FailedRun,
}

impl From<cairn_engine::Health> for Health {
    fn from(h: cairn_engine::Health) -> Self {
        use cairn_engine::Health as E;
        match h {
            E::Ok => Health::Ok,
            E::Warn => Health::Warn,
            E::SlaFailed => Health::SlaFailed,
            E::FailingCheck => Health::FailingCheck,
            E::FailedRun => Health::FailedRun,
        }
    }
}

/// Where a unit stands against its asset's SLA.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SlaLevel {
    Ok,
    Warn,
    Failed,
}

impl From<cairn_engine::SlaLevel> for SlaLevel {
    fn from(l: cairn_engine::SlaLevel) -> Self {
        use cairn_engine::SlaLevel as E;
        match l {
            E::Ok => SlaLevel::Ok,
            E::Warn => SlaLevel::Warn,
            E::Failed => SlaLevel::Failed,
        }
    }
}

/// What a unit's SLA clock measures.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SlaBasis {
    NotBuilt,
    NeverBuilt,
    Stale,
}

impl From<cairn_engine::SlaBasis> for SlaBasis {
    fn from(b: cairn_engine::SlaBasis) -> Self {
        use cairn_engine::SlaBasis as E;
        match b {
            E::NotBuilt => SlaBasis::NotBuilt,
            E::NeverBuilt => SlaBasis::NeverBuilt,
            E::Stale => SlaBasis::Stale,
        }
    }
}

/// A unit's reading against its asset's SLA: since when it is behind and
/// for how many seconds (both `null` for a unit never built that has no
/// time window).
#[derive(Serialize)]
pub(crate) struct SlaReading<'a> {
    level: SlaLevel,
    basis: SlaBasis,
    since: Option<&'a DateTime<Utc>>,
    age_seconds: Option<u64>,
}

impl<'a> From<&'a cairn_engine::SlaReading> for SlaReading<'a> {
    fn from(r: &'a cairn_engine::SlaReading) -> Self {
        SlaReading {
            level: r.level.into(),
            basis: r.basis.into(),
            since: r.since.as_ref(),
            age_seconds: r.age_secs,
        }
    }
}

/// An asset's declared SLA, in seconds.
#[derive(Serialize)]
pub(crate) struct Freshness {
    warn_after_seconds: Option<u64>,
    fail_after_seconds: Option<u64>,
}

impl From<&cairn_assets::FreshnessSla> for Freshness {
    fn from(f: &cairn_assets::FreshnessSla) -> Self {
        Freshness {
            warn_after_seconds: f.warn_after.map(|d| d.as_secs()),
            fail_after_seconds: f.fail_after.map(|d| d.as_secs()),
        }
    }
}

/// The most overdue partition of an asset.
#[derive(Serialize)]
pub(crate) struct OverduePartition<'a> {
    key: &'a str,
    #[serde(flatten)]
    sla: SlaReading<'a>,
}

/// How an attempt ended.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AttemptOutcome {
    Materialized,
    Fresh,
    Failed,
    Skipped,
}

impl From<cairn_catalog::AttemptOutcome> for AttemptOutcome {
    fn from(o: cairn_catalog::AttemptOutcome) -> Self {
        use cairn_catalog::AttemptOutcome as C;
        match o {
            C::Materialized => AttemptOutcome::Materialized,
            C::Fresh => AttemptOutcome::Fresh,
            C::Failed => AttemptOutcome::Failed,
            C::Skipped => AttemptOutcome::Skipped,
        }
    }
}

/// One attempt to build an asset partition.
#[derive(Serialize)]
pub(crate) struct AttemptRecord<'a> {
    run_id: &'a str,
    asset: &'a str,
    partition: &'a str,
    outcome: AttemptOutcome,
    error: Option<&'a str>,
    at: &'a DateTime<Utc>,
}

impl<'a> From<&'a cairn_catalog::AttemptRecord> for AttemptRecord<'a> {
    fn from(a: &'a cairn_catalog::AttemptRecord) -> Self {
        AttemptRecord {
            run_id: &a.run_id.0,
            asset: &a.asset,
            partition: &a.partition,
            outcome: a.outcome.into(),
            error: a.error.as_deref(),
            at: &a.at,
        }
    }
}

/// The summary of a committed version (with its asset and partition).
#[derive(Serialize)]
pub(crate) struct CurrentVersion<'a> {
    id: i64,
    run_id: &'a str,
    asset: &'a str,
    partition: &'a str,
    code_version: &'a str,
    input_version: &'a str,
    data_version: &'a str,
    row_count: u64,
    bytes_written: u64,
    wall_ms: u64,
    committed_at: &'a DateTime<Utc>,
}

impl<'a> From<&'a cairn_catalog::CurrentVersion> for CurrentVersion<'a> {
    fn from(c: &'a cairn_catalog::CurrentVersion) -> Self {
        CurrentVersion {
            id: c.id.0,
            run_id: &c.run_id.0,
            asset: &c.asset,
            partition: &c.partition,
            code_version: &c.code_version,
            input_version: &c.input_version,
            data_version: &c.data_version,
            row_count: c.row_count,
            bytes_written: c.bytes_written,
            wall_ms: c.wall_ms,
            committed_at: &c.committed_at,
        }
    }
}

/// The committed version of one partition in a status listing (its asset
/// and key are where it is listed).
#[derive(Serialize)]
pub(crate) struct PartitionVersion<'a> {
    id: i64,
    run_id: &'a str,
    code_version: &'a str,
    input_version: &'a str,
    data_version: &'a str,
    row_count: u64,
    bytes_written: u64,
    wall_ms: u64,
    committed_at: &'a DateTime<Utc>,
}

/// The state of one partition.
#[derive(Serialize)]
pub(crate) struct PartitionStatus<'a> {
    key: &'a str,
    state: AssetState,
    causes: Vec<StaleCause<'a>>,
    input_version: Option<&'a str>,
    current: Option<PartitionVersion<'a>>,
    last_failure: Option<AttemptRecord<'a>>,
    health: Health,
    sla: Option<SlaReading<'a>>,
}

impl<'a> From<&'a cairn_engine::PartitionStatus> for PartitionStatus<'a> {
    fn from(p: &'a cairn_engine::PartitionStatus) -> Self {
        PartitionStatus {
            key: &p.key,
            state: p.state.into(),
            causes: causes(&p.causes),
            input_version: p.input_version.as_deref(),
            current: p.current.as_deref().map(|c| PartitionVersion {
                id: c.id.0,
                run_id: &c.run_id,
                code_version: &c.code_version,
                input_version: c.input_version.as_str(),
                data_version: c.data_version.as_str(),
                row_count: c.row_count,
                bytes_written: c.bytes_written,
                wall_ms: c.wall_ms,
                committed_at: &c.committed_at,
            }),
            last_failure: p.last_failure.as_ref().map(AttemptRecord::from),
            health: p.health.into(),
            sla: p.sla.as_ref().map(SlaReading::from),
        }
    }
}

/// Counts over the partitions of a partitioned asset, and (with
/// `--partitions`) each of them.
#[derive(Serialize)]
pub(crate) struct PartitionSummary<'a> {
    total: usize,
    fresh: usize,
    stale: usize,
    missing: usize,
    failed: usize,
    rows: u64,
    last_committed_at: Option<&'a DateTime<Utc>>,
    stale_causes: &'a [String],
    sla_warn: usize,
    sla_failed: usize,
    most_overdue: Option<OverduePartition<'a>>,
    list: Vec<PartitionStatus<'a>>,
}

impl<'a> From<&'a cairn_engine::PartitionSummary> for PartitionSummary<'a> {
    fn from(p: &'a cairn_engine::PartitionSummary) -> Self {
        PartitionSummary {
            total: p.total,
            fresh: p.fresh,
            stale: p.stale,
            missing: p.missing,
            failed: p.failed,
            rows: p.rows,
            last_committed_at: p.last_committed_at.as_ref(),
            stale_causes: &p.stale_causes,
            sla_warn: p.sla_warn,
            sla_failed: p.sla_failed,
            most_overdue: p.most_overdue.as_ref().map(|o| OverduePartition {
                key: &o.key,
                sla: SlaReading::from(&o.sla),
            }),
            list: p.list.iter().map(PartitionStatus::from).collect(),
        }
    }
}

/// The status of one asset.
#[derive(Serialize)]
pub(crate) struct AssetStatus<'a> {
    name: &'a str,
    state: AssetState,
    causes: Vec<StaleCause<'a>>,
    code_version: &'a str,
    input_version: Option<&'a str>,
    current: Option<CurrentVersion<'a>>,
    last_failure: Option<AttemptRecord<'a>>,
    partitions: Option<PartitionSummary<'a>>,
    failing_checks: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warning_checks: &'a [String],
    health: Health,
    freshness: Option<Freshness>,
    sla: Option<SlaReading<'a>>,
}

impl<'a> From<&'a cairn_engine::AssetStatus> for AssetStatus<'a> {
    fn from(s: &'a cairn_engine::AssetStatus) -> Self {
        AssetStatus {
            name: &s.name,
            state: s.state.into(),
            causes: causes(&s.causes),
            code_version: &s.code_version,
            input_version: s.input_version.as_deref(),
            current: s.current.as_ref().map(CurrentVersion::from),
            last_failure: s.last_failure.as_ref().map(AttemptRecord::from),
            partitions: s.partitions.as_ref().map(PartitionSummary::from),
            failing_checks: &s.failing_checks,
            warning_checks: &s.warning_checks,
            health: s.health.into(),
            freshness: s.freshness.as_ref().map(Freshness::from),
            sla: s.sla.as_ref().map(SlaReading::from),
        }
    }
}

/// The outcome of one check, as a run or `cairn check` evaluated it.
#[derive(Serialize)]
pub(crate) struct CheckOutcome<'a> {
    name: &'a str,
    severity: &'a str,
    passed: bool,
    failing_rows: u64,
    /// The failing rows as the engine sampled them: JSON objects, passed
    /// through as they are.
    sample: &'a [serde_json::Value],
    error: Option<&'a str>,
}

impl<'a> From<&'a cairn_engine::CheckOutcome> for CheckOutcome<'a> {
    fn from(c: &'a cairn_engine::CheckOutcome) -> Self {
        CheckOutcome {
            name: &c.name,
            severity: c.severity,
            passed: c.passed,
            failing_rows: c.failing_rows,
            sample: &c.sample,
            error: c.error.as_deref(),
        }
    }
}

/// The outcomes, in order.
pub(crate) fn check_outcomes(checks: &[cairn_engine::CheckOutcome]) -> Vec<CheckOutcome<'_>> {
    checks.iter().map(CheckOutcome::from).collect()
}

/// Statistics of one output column.
#[derive(Serialize)]
pub(crate) struct ColumnStats<'a> {
    name: &'a str,
    null_count: Option<u64>,
    min: Option<&'a str>,
    max: Option<&'a str>,
}

/// What one materialization measured and cost.
#[derive(Serialize)]
pub(crate) struct Metrics<'a> {
    rows_added: Option<u64>,
    rows_removed: Option<u64>,
    columns: Vec<ColumnStats<'a>>,
    cpu_seconds: f64,
    datafusion_seconds: f64,
    output_rows: u64,
    bytes_scanned: u64,
    spilled_bytes: u64,
    bytes_read: u64,
    read_requests: u64,
    objects_read: u64,
    bytes_written: u64,
    write_requests: u64,
    other_requests: u64,
    peak_memory_bytes: u64,
    cost_usd: f64,
}

impl<'a> From<&'a cairn_catalog::MaterializationMetrics> for Metrics<'a> {
    fn from(m: &'a cairn_catalog::MaterializationMetrics) -> Self {
        Metrics {
            rows_added: m.rows_added,
            rows_removed: m.rows_removed,
            columns: m
                .columns
                .iter()
                .map(|c| ColumnStats {
                    name: &c.name,
                    null_count: c.null_count,
                    min: c.min.as_deref(),
                    max: c.max.as_deref(),
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
}

/// The result of a run (`materialize`, and the run of a backfill).
#[derive(Serialize)]
pub(crate) struct RunReport<'a> {
    run_id: Option<&'a str>,
    results: Vec<AssetResult<'a>>,
    wall: Duration,
    /// Under a memory limit, for a run in this process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) memory: Option<RunMemory>,
}

/// A run's memory under `--memory-limit` / `[engine] memory_limit`.
#[derive(Serialize)]
pub(crate) struct RunMemory {
    pub(crate) limit_bytes: u64,
    /// Spilled to disk by all units together.
    pub(crate) spilled_bytes: u64,
    /// The process's peak resident memory (Linux; `null` elsewhere).
    pub(crate) peak_rss_bytes: Option<u64>,
}

impl<'a> From<&'a cairn_engine::RunReport> for RunReport<'a> {
    fn from(r: &'a cairn_engine::RunReport) -> Self {
        RunReport {
            run_id: r.run_id.as_ref().map(|id| id.0.as_str()),
            results: r.results.iter().map(AssetResult::from).collect(),
            wall: r.wall.into(),
            memory: None,
        }
    }
}

/// What happened to one asset partition in a run: its name and key, then
/// the outcome's fields after its `outcome` tag.
#[derive(Serialize)]
pub(crate) struct AssetResult<'a> {
    asset: &'a str,
    partition: &'a str,
    #[serde(flatten)]
    outcome: AssetOutcome<'a>,
}

impl<'a> From<&'a cairn_engine::AssetResult> for AssetResult<'a> {
    fn from(r: &'a cairn_engine::AssetResult) -> Self {
        AssetResult {
            asset: &r.asset,
            partition: &r.partition,
            outcome: (&r.outcome).into(),
        }
    }
}

/// The outcome, tagged by `outcome`.
#[derive(Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub(crate) enum AssetOutcome<'a> {
    Materialized(Box<Materialized<'a>>),
    Fresh {
        early_cutoff: bool,
    },
    Failed {
        error: &'a str,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        checks: Vec<CheckOutcome<'a>>,
    },
    Skipped {
        upstream: &'a str,
    },
}

impl<'a> From<&'a cairn_engine::AssetOutcome> for AssetOutcome<'a> {
    fn from(o: &'a cairn_engine::AssetOutcome) -> Self {
        use cairn_engine::AssetOutcome as E;
        match o {
            E::Materialized(m) => AssetOutcome::Materialized(Box::new(Materialized::from(&**m))),
            E::Fresh { early_cutoff } => AssetOutcome::Fresh {
                early_cutoff: *early_cutoff,
            },
            E::Failed { error, checks } => AssetOutcome::Failed {
                error,
                checks: check_outcomes(checks),
            },
            E::Skipped { upstream } => AssetOutcome::Skipped { upstream },
        }
    }
}

/// A version a run committed, as the run saw it (the output schema is
/// not part of the wire format).
#[derive(Serialize)]
pub(crate) struct Materialized<'a> {
    id: i64,
    rows: u64,
    bytes_written: u64,
    files: &'a [String],
    data_version: &'a str,
    data_changed: bool,
    wall: Duration,
    datafusion: Duration,
    write: Duration,
    hashing: Duration,
    row_changes: Duration,
    rows_added: Option<u64>,
    rows_removed: Option<u64>,
    checks: Vec<CheckOutcome<'a>>,
    metrics: Metrics<'a>,
}

impl<'a> From<&'a cairn_engine::Materialized> for Materialized<'a> {
    fn from(m: &'a cairn_engine::Materialized) -> Self {
        Materialized {
            id: m.id.0,
            rows: m.rows,
            bytes_written: m.bytes_written,
            files: &m.files,
            data_version: &m.data_version,
            data_changed: m.data_changed,
            wall: m.wall.into(),
            datafusion: m.datafusion.into(),
            write: m.write.into(),
            hashing: m.hashing.into(),
            row_changes: m.row_changes.into(),
            rows_added: m.rows_added,
            rows_removed: m.rows_removed,
            checks: check_outcomes(&m.checks),
            metrics: (&m.metrics).into(),
        }
    }
}

/// What the plan decides for one unit (`materialize --explain`).
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Decision {
    Build,
    BuildUnlessUpstreamUnchanged,
    Forced,
    Fresh,
}

impl From<cairn_engine::Decision> for Decision {
    fn from(d: cairn_engine::Decision) -> Self {
        use cairn_engine::Decision as E;
        match d {
            E::Build => Decision::Build,
            E::BuildUnlessUpstreamUnchanged => Decision::BuildUnlessUpstreamUnchanged,
            E::Forced => Decision::Forced,
            E::Fresh => Decision::Fresh,
        }
    }
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use cairn_catalog::AttemptOutcome;
    use cairn_engine::{AssetState, Decision, StaleCause};

    /// Each value as compact JSON, one a line.
    fn lines<T: serde::Serialize>(values: impl IntoIterator<Item = T>) -> String {
        values
            .into_iter()
            .map(|v| serde_json::to_string(&v).unwrap_or_else(|e| panic!("{e}")) + "\n")
            .collect()
    }

    /// Every cause, tagged by `cause`, with the upstream's `name` when it
    /// has one.
    #[test]
    fn every_stale_cause() {
        let name = || "orders".to_owned();
        let causes = [
            StaleCause::NeverMaterialized,
            StaleCause::CodeChanged,
            StaleCause::SourceChanged { name: name() },
            StaleCause::UpstreamChanged { name: name() },
            StaleCause::UpstreamStale { name: name() },
            StaleCause::UpstreamNeverMaterialized { name: name() },
            StaleCause::InputsChanged,
            StaleCause::EarlierPartitionChanged,
            StaleCause::EarlierPartitionStale,
            StaleCause::EarlierPartitionMissing,
        ];
        expect![[r#"
            {"cause":"never_materialized"}
            {"cause":"code_changed"}
            {"cause":"source_changed","name":"orders"}
            {"cause":"upstream_changed","name":"orders"}
            {"cause":"upstream_stale","name":"orders"}
            {"cause":"upstream_never_materialized","name":"orders"}
            {"cause":"inputs_changed"}
            {"cause":"earlier_partition_changed"}
            {"cause":"earlier_partition_stale"}
            {"cause":"earlier_partition_missing"}
        "#]]
        .assert_eq(&lines(causes.iter().map(super::StaleCause::from)));
    }

    /// Every state, attempt outcome and plan decision, as plain strings.
    #[test]
    fn every_state_outcome_and_decision() {
        let states = [
            AssetState::Fresh,
            AssetState::Stale,
            AssetState::NeverMaterialized,
            AssetState::Failed,
        ];
        let outcomes = [
            AttemptOutcome::Materialized,
            AttemptOutcome::Fresh,
            AttemptOutcome::Failed,
            AttemptOutcome::Skipped,
        ];
        let decisions = [
            Decision::Build,
            Decision::BuildUnlessUpstreamUnchanged,
            Decision::Forced,
            Decision::Fresh,
        ];
        expect![[r#"
            "fresh"
            "stale"
            "never_materialized"
            "failed"
        "#]]
        .assert_eq(&lines(states.map(super::AssetState::from)));
        expect![[r#"
            "materialized"
            "fresh"
            "failed"
            "skipped"
        "#]]
        .assert_eq(&lines(outcomes.map(super::AttemptOutcome::from)));
        expect![[r#"
            "build"
            "build_unless_upstream_unchanged"
            "forced"
            "fresh"
        "#]]
        .assert_eq(&lines(decisions.map(super::Decision::from)));
    }

    /// `tag` gives the names the JSON carries (the gRPC API reuses them).
    #[test]
    fn tags_are_the_json_names() {
        assert_eq!(
            super::tag(&super::AssetState::from(AssetState::NeverMaterialized)),
            "never_materialized"
        );
        assert_eq!(
            super::tag(&super::Decision::from(
                Decision::BuildUnlessUpstreamUnchanged
            )),
            "build_unless_upstream_unchanged"
        );
        let cause = StaleCause::UpstreamStale {
            name: "orders".to_owned(),
        };
        assert_eq!(
            super::tag(&super::StaleCause::from(&cause)),
            "upstream_stale"
        );
        assert_eq!(
            super::tag(&super::StaleCause::from(&StaleCause::CodeChanged)),
            "code_changed"
        );
    }

    /// Durations as `std::time::Duration` serializes them.
    #[test]
    fn durations() {
        let durations = [
            std::time::Duration::ZERO,
            std::time::Duration::new(3, 141_592_653),
            std::time::Duration::from_millis(35),
        ];
        expect![[r#"
            {"secs":0,"nanos":0}
            {"secs":3,"nanos":141592653}
            {"secs":0,"nanos":35000000}
        "#]]
        .assert_eq(&lines(durations.map(super::Duration::from)));
        // The same as the standard library's own serialization.
        assert_eq!(
            lines(durations),
            lines(durations.map(super::Duration::from))
        );
    }
}
