//! What a finished run or `cairn check` tells the alerts: each unit's final
//! outcome as incident observations (the rules are in `alerts/mod.rs`).
//! Observing never fails the operation: a catalog error is logged.

use cairn_catalog::{IncidentKind, RunId};

use crate::alerts::incidents::Observation;
use crate::execute::report::{AssetOutcome, AssetResult};
use crate::model::workspace::Workspace;
use crate::quality::checks::{CheckOutcome, describe_blocking};

/// Observes the final outcome of every unit of a run.
pub(crate) fn observe_run(ws: &Workspace, run_id: &RunId, results: &[AssetResult]) {
    if ws.project.config.alerts.is_empty() {
        return;
    }
    let observations: Vec<Observation> = results.iter().flat_map(run_observations).collect();
    report(crate::alerts::observe(ws, Some(run_id), &observations));
}

/// Observes the checks `cairn check` ran on committed versions: per
/// `(asset, partition)`, its check outcomes.
pub(crate) fn observe_checks<'a>(
    ws: &Workspace,
    run_id: &RunId,
    units: impl IntoIterator<Item = (&'a str, &'a str, &'a [CheckOutcome])>,
) {
    if ws.project.config.alerts.is_empty() {
        return;
    }
    let observations: Vec<Observation> = units
        .into_iter()
        .map(|(asset, key, checks)| match describe_blocking(checks) {
            Some(detail) => Observation::failing(IncidentKind::CheckFailed, asset, key, detail),
            None => Observation::passing(IncidentKind::CheckFailed, asset, key),
        })
        .collect();
    report(crate::alerts::observe(ws, Some(run_id), &observations));
}

fn report(observed: Result<usize, crate::error::EngineError>) {
    if let Err(e) = observed {
        tracing::warn!("alerts: could not record incidents: {e}");
    }
}

/// What one unit's outcome says.
fn run_observations(r: &AssetResult) -> Vec<Observation> {
    let (asset, key) = (r.asset.as_str(), r.partition.as_str());
    match &r.outcome {
        // Committed: built, its error checks passed, and just now.
        AssetOutcome::Materialized(_) => vec![
            Observation::passing(IncidentKind::RunFailed, asset, key),
            Observation::passing(IncidentKind::CheckFailed, asset, key),
            Observation::passing(IncidentKind::FreshnessMissed, asset, key),
        ],
        // Found unchanged just before building: its build is sound again
        // (its checks were not rerun).
        AssetOutcome::Fresh { early_cutoff: true } => {
            vec![Observation::passing(IncidentKind::RunFailed, asset, key)]
        }
        AssetOutcome::Failed { error, checks } => match describe_blocking(checks) {
            // Blocked by its error checks: a check incident, not a run one.
            Some(detail) => vec![Observation::failing(
                IncidentKind::CheckFailed,
                asset,
                key,
                detail,
            )],
            None => vec![Observation::failing(
                IncidentKind::RunFailed,
                asset,
                key,
                error.clone(),
            )],
        },
        // Not attempted: nothing new is known of it.
        AssetOutcome::Fresh {
            early_cutoff: false,
        }
        | AssetOutcome::Skipped { .. } => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::run_observations;
    use crate::alerts::incidents::{Observation, Seen};
    use crate::execute::report::{AssetOutcome, AssetResult};
    use crate::quality::checks::CheckOutcome;

    fn result(outcome: AssetOutcome) -> AssetResult {
        AssetResult {
            asset: "orders".to_owned(),
            partition: "2024-01-05".to_owned(),
            outcome,
        }
    }

    fn check(name: &str, severity: &'static str, failing_rows: u64) -> CheckOutcome {
        CheckOutcome {
            name: name.to_owned(),
            severity,
            passed: failing_rows == 0,
            failing_rows,
            sample: Vec::new(),
            error: None,
        }
    }

    /// Each observation as `KIND failing: DETAIL` / `KIND passing`.
    fn seen(observations: Vec<Observation>) -> Vec<String> {
        observations
            .into_iter()
            .map(|o| {
                assert_eq!(
                    (o.asset.as_str(), o.partition.as_str()),
                    ("orders", "2024-01-05")
                );
                match o.seen {
                    Seen::Failing { detail } => format!("{} failing: {detail}", o.kind.as_str()),
                    Seen::Passing => format!("{} passing", o.kind.as_str()),
                }
            })
            .collect()
    }

    #[test]
    fn a_failed_build_is_a_run_incident_unless_its_error_checks_blocked_it() {
        let failed = result(AssetOutcome::Failed {
            error: "assets/orders.sql: no column x".to_owned(),
            checks: Vec::new(),
        });
        assert_eq!(
            seen(run_observations(&failed)),
            ["run_failed failing: assets/orders.sql: no column x"]
        );
        let blocked = result(AssetOutcome::Failed {
            error: "checks failed, output not committed: ...".to_owned(),
            checks: vec![
                check("not_null(id)", "error", 3),
                check("unique(id)", "error", 0),
                check("row_count(1, 9)", "warn", 1),
            ],
        });
        assert_eq!(
            seen(run_observations(&blocked)),
            ["check_failed failing: not_null(id) (3 failing rows)"]
        );
    }

    #[test]
    fn what_was_not_attempted_says_nothing_and_an_early_cutoff_clears_a_run_failure() {
        let skipped = result(AssetOutcome::Skipped {
            upstream: "raw".to_owned(),
        });
        assert!(run_observations(&skipped).is_empty());
        let fresh = result(AssetOutcome::Fresh {
            early_cutoff: false,
        });
        assert!(run_observations(&fresh).is_empty());
        let cutoff = result(AssetOutcome::Fresh { early_cutoff: true });
        assert_eq!(seen(run_observations(&cutoff)), ["run_failed passing"]);
    }
}
