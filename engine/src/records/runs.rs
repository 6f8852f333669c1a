//! Runs as the catalog records them: starting one, and check outcomes in
//! the form the catalog stores.

use chrono::Utc;

use cairn_catalog::{BackfillId, NewCheckResult, NewRun, RunId};

use crate::error::EngineError;
use crate::model::workspace::Workspace;
use crate::quality::checks::CheckOutcome;

/// Records the start of a run by this process, triggered by `trigger`.
pub(crate) fn begin_run(
    ws: &Workspace,
    command: &str,
    trigger: &str,
    backfill: Option<BackfillId>,
) -> Result<RunId, EngineError> {
    let run_id = RunId(uuid::Uuid::now_v7().to_string());
    ws.catalog.begin_run(&NewRun {
        id: run_id.clone(),
        user: ws.principal(),
        host: crate::model::whoami::host(),
        pid: std::process::id(),
        command: command.to_owned(),
        trigger: trigger.to_owned(),
        started_at: Utc::now(),
        backfill_id: backfill,
    })?;
    Ok(run_id)
}

/// A check outcome as the catalog stores it.
pub(crate) fn check_record(c: &CheckOutcome) -> NewCheckResult {
    NewCheckResult {
        name: c.name.clone(),
        severity: c.severity.to_owned(),
        passed: c.passed,
        failing_rows: c.failing_rows,
        sample_json: serde_json::Value::Array(c.sample.clone()).to_string(),
        error: c.error.clone(),
    }
}
