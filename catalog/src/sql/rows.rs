//! How catalog values map to rows: the column lists the queries select,
//! the row decoders (`*_from_row`) and the encoders and decoders of stored
//! values (timestamps, counters, JSON).

use super::db::Row;
use chrono::{DateTime, SecondsFormat, Utc};

use super::{Fallible, Fault};
use crate::{
    AttemptOutcome, AttemptRecord, BackfillId, BackfillRecord, BackfillStatus, CheckResultRecord,
    CurrentVersion, CurrentVersionRef, FileRecord, MaterializationId, MaterializationMetrics,
    NewBackfill, NewCheckResult, PartitionRef, RunId, RunRecord, RunStatus, SourceFingerprint,
    UpstreamKind, UpstreamVersion,
};

/// Columns of a materialization summary ([`CurrentVersion`]), table alias `m`,
/// read by position in [`summary_from_row`].
pub(super) const SUMMARY_COLUMNS: &str = r#"m.id, m.run_id, m.asset, m."partition", m.code_version,
    m.input_version, m.data_version, m.row_count, m.bytes_written, m.wall_ms, m.committed_at"#;

/// The same columns from the summary `current_versions` keeps beside each
/// pointer (migration 6), for [`summary_ref_from_row`].
pub(super) const CURRENT_SUMMARY_COLUMNS: &str = r#"materialization_id, run_id, asset, "partition",
    code_version, input_version, data_version, row_count, bytes_written, wall_ms, committed_at"#;

/// Columns of a check result, table alias `k`, for [`check_from_row`].
pub(super) const CHECK_COLUMNS: &str = r#"k.id, k.run_id, k.asset, k."partition", k.materialization_id,
    k.name, k.severity, k.passed, k.failing_rows, k.sample_json, k.error, k.at"#;

/// Columns of a run, for [`run_from_row`].
pub(super) const RUN_COLUMNS: &str = r#"id, "user", host, pid, command, "trigger", started_at, finished_at,
    status, error, backfill_id, queued_at"#;

/// Columns of a backfill without its units, for [`backfill_from_row`].
pub(super) const BACKFILL_COLUMNS: &str = r#"id, "user", command, created_at, finished_at, status, selection,
    partition_from, partition_to, partitions, force"#;

pub(super) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(super) fn parse_timestamp(text: &str, column: &str) -> Fallible<DateTime<Utc>> {
    if let Some(at) = parse_own_timestamp(text) {
        return Ok(at);
    }
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|e| Fault::Corrupt(format!("{column} `{text}` is not an RFC 3339 time: {e}")))
}

/// The exact form [`timestamp`] writes (`2024-05-01T12:34:56.123456Z`),
/// parsed without the general RFC 3339 machinery: status reads one per
/// committed partition. `None` for any other form.
pub(super) fn parse_own_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    if b.len() != 27
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[26] != b'Z'
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |acc, d| {
            d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
        })
    };
    let date =
        chrono::NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(5..7)?, num(8..10)?)?;
    let time = chrono::NaiveTime::from_hms_micro_opt(
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
        num(20..26)?,
    )?;
    Some(date.and_time(time).and_utc())
}

pub(super) fn get_time(row: &Row<'_>, column: &str) -> Fallible<DateTime<Utc>> {
    let text: String = row.get(column)?;
    parse_timestamp(&text, column)
}

pub(super) fn get_opt_time(row: &Row<'_>, column: &str) -> Fallible<Option<DateTime<Utc>>> {
    let text: Option<String> = row.get(column)?;
    text.map(|text| parse_timestamp(&text, column)).transpose()
}

fn get_u64(row: &Row<'_>, column: &str) -> Fallible<u64> {
    let value: i64 = row.get(column)?;
    u64::try_from(value).map_err(|_| Fault::Corrupt(format!("{column} is negative ({value})")))
}

pub(super) fn to_i64(value: u64, what: &str) -> Fallible<i64> {
    i64::try_from(value).map_err(|_| {
        Fault::Corrupt(format!(
            "{what} {value} does not fit in a signed 64-bit integer"
        ))
    })
}

pub(super) fn limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

pub(super) fn run_from_row(row: &Row<'_>) -> Fallible<RunRecord> {
    let pid: i64 = row.get("pid")?;
    let status: String = row.get("status")?;
    Ok(RunRecord {
        id: RunId(row.get("id")?),
        user: row.get("user")?,
        host: row.get("host")?,
        pid: u32::try_from(pid).map_err(|_| Fault::Corrupt(format!("pid {pid} out of range")))?,
        command: row.get("command")?,
        trigger: row.get("trigger")?,
        started_at: get_time(row, "started_at")?,
        finished_at: get_opt_time(row, "finished_at")?,
        status: RunStatus::parse(&status)
            .ok_or_else(|| Fault::Corrupt(format!("unknown run status `{status}`")))?,
        error: row.get("error")?,
        backfill_id: row.get::<_, Option<String>>("backfill_id")?.map(BackfillId),
        queued_at: get_opt_time(row, "queued_at")?,
    })
}

pub(super) fn attempt_from_row(row: &Row<'_>) -> Fallible<AttemptRecord> {
    let outcome: String = row.get("outcome")?;
    Ok(AttemptRecord {
        run_id: RunId(row.get("run_id")?),
        asset: row.get("asset")?,
        partition: row.get("partition")?,
        outcome: AttemptOutcome::parse(&outcome)
            .ok_or_else(|| Fault::Corrupt(format!("unknown attempt outcome `{outcome}`")))?,
        error: row.get("error")?,
        at: get_time(row, "at")?,
    })
}

/// Reads a row selected with [`SUMMARY_COLUMNS`] (first), as an owned copy.
pub(super) fn summary_from_row(row: &Row<'_>) -> Fallible<CurrentVersion> {
    summary_ref_from_row(row).map(|r| r.to_owned_version())
}

/// Reads a row selected with [`SUMMARY_COLUMNS`] (first) by position,
/// borrowing the text columns from the row: this runs once per (asset,
/// partition) in [`Catalog::visit_current_versions`](crate::Catalog::visit_current_versions).
pub(super) fn summary_ref_from_row<'r>(row: &Row<'r>) -> Fallible<CurrentVersionRef<'r>> {
    let text = |index: usize| -> Fallible<&'r str> { row.get(index) };
    let u64_at = |index: usize, column: &str| -> Fallible<u64> {
        let value: i64 = row.get(index)?;
        u64::try_from(value).map_err(|_| Fault::Corrupt(format!("{column} is negative ({value})")))
    };
    Ok(CurrentVersionRef {
        id: MaterializationId(row.get(0)?),
        run_id: text(1)?,
        asset: text(2)?,
        partition: text(3)?,
        code_version: text(4)?,
        input_version: text(5)?,
        data_version: text(6)?,
        row_count: u64_at(7, "row_count")?,
        bytes_written: u64_at(8, "bytes_written")?,
        wall_ms: u64_at(9, "wall_ms")?,
        committed_at: parse_timestamp(text(10)?, "committed_at")?,
    })
}

/// Reads a row selected with [`SUMMARY_COLUMNS`] followed by
/// `m.metrics_json`.
pub(super) fn summary_with_metrics_from_row(
    row: &Row<'_>,
) -> Fallible<(CurrentVersion, MaterializationMetrics)> {
    let summary = summary_from_row(row)?;
    let metrics: &str = row.get(11)?;
    let metrics = metrics_from_json(metrics, summary.id)?;
    Ok((summary, metrics))
}

/// Encodes metrics for `metrics_json`. JSON has no NaN or infinity (they
/// would be written as `null` and not read back), so they are refused.
pub(super) fn metrics_to_json(metrics: &MaterializationMetrics) -> Fallible<String> {
    for (field, value) in [
        ("cpu_seconds", metrics.cpu_seconds),
        ("datafusion_seconds", metrics.datafusion_seconds),
        ("cost_usd", metrics.cost_usd),
    ] {
        if !value.is_finite() {
            return Err(Fault::Corrupt(format!(
                "metrics {field} is {value}, which cannot be stored (not finite)"
            )));
        }
    }
    serde_json::to_string(metrics)
        .map_err(|e| Fault::Corrupt(format!("cannot encode metrics: {e}")))
}

/// Decodes the `metrics_json` of materialization `id`.
fn metrics_from_json(text: &str, id: MaterializationId) -> Fallible<MaterializationMetrics> {
    serde_json::from_str(text).map_err(|e| {
        Fault::Corrupt(format!(
            "metrics of materialization {id} `{text}` are not valid metrics JSON: {e}"
        ))
    })
}

/// Reads a row selected with [`CHECK_COLUMNS`].
pub(super) fn check_from_row(row: &Row<'_>) -> Fallible<CheckResultRecord> {
    let passed: i64 = row.get("passed")?;
    Ok(CheckResultRecord {
        id: row.get("id")?,
        run_id: RunId(row.get("run_id")?),
        asset: row.get("asset")?,
        partition: row.get("partition")?,
        materialization: row
            .get::<_, Option<i64>>("materialization_id")?
            .map(MaterializationId),
        at: get_time(row, "at")?,
        result: NewCheckResult {
            name: row.get("name")?,
            severity: row.get("severity")?,
            passed: passed != 0,
            failing_rows: get_u64(row, "failing_rows")?,
            sample_json: row.get("sample_json")?,
            error: row.get("error")?,
        },
    })
}

pub(super) fn input_from_row(row: &Row<'_>) -> Fallible<UpstreamVersion> {
    let kind: String = row.get("kind")?;
    Ok(UpstreamVersion {
        name: row.get("name")?,
        kind: UpstreamKind::parse(&kind)
            .ok_or_else(|| Fault::Corrupt(format!("unknown upstream kind `{kind}`")))?,
        partition: row.get("partition")?,
        data_version: row.get("data_version")?,
        materialization: row
            .get::<_, Option<i64>>("upstream_materialization_id")?
            .map(MaterializationId),
    })
}

pub(super) fn file_from_row(row: &Row<'_>) -> Fallible<FileRecord> {
    Ok(FileRecord {
        path: row.get("path")?,
        size_bytes: get_u64(row, "size_bytes")?,
        row_count: get_u64(row, "row_count")?,
    })
}

/// Reads a row selected with [`BACKFILL_COLUMNS`], without its units.
pub(super) fn backfill_from_row(row: &Row<'_>) -> Fallible<BackfillRecord> {
    let status: String = row.get("status")?;
    let selection: String = row.get("selection")?;
    let partitions: Option<String> = row.get("partitions")?;
    let force: i64 = row.get("force")?;
    Ok(BackfillRecord {
        backfill: NewBackfill {
            id: BackfillId(row.get("id")?),
            user: row.get("user")?,
            command: row.get("command")?,
            created_at: get_time(row, "created_at")?,
            selection: from_json(&selection, "backfill selection")?,
            from: row.get("partition_from")?,
            to: row.get("partition_to")?,
            partitions: partitions
                .map(|text| from_json(&text, "backfill partitions"))
                .transpose()?,
            force: force != 0,
            units: Vec::new(),
        },
        finished_at: get_opt_time(row, "finished_at")?,
        status: BackfillStatus::parse(&status)
            .ok_or_else(|| Fault::Corrupt(format!("unknown backfill status `{status}`")))?,
    })
}

/// Reads an `(asset, partition)` pair selected in that order.
pub(super) fn unit_from_row(row: &Row<'_>) -> Fallible<PartitionRef> {
    Ok(PartitionRef {
        asset: row.get(0)?,
        partition: row.get(1)?,
    })
}

/// Encodes a list of strings as a JSON array.
pub(super) fn to_json(values: &[String], what: &str) -> Fallible<String> {
    serde_json::to_string(values).map_err(|e| Fault::Corrupt(format!("cannot encode {what}: {e}")))
}

/// Decodes a JSON array of strings.
fn from_json(text: &str, what: &str) -> Fallible<Vec<String>> {
    serde_json::from_str(text).map_err(|e| {
        Fault::Corrupt(format!(
            "{what} `{text}` is not a JSON array of strings: {e}"
        ))
    })
}

pub(super) fn fingerprint_from_row(row: &Row<'_>) -> Fallible<SourceFingerprint> {
    Ok(SourceFingerprint {
        source: row.get("source")?,
        fingerprint: row.get("fingerprint")?,
        data_version: row.get("data_version")?,
        observed_at: get_time(row, "observed_at")?,
    })
}
