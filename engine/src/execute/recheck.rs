//! `cairn check`: rerun the checks of committed versions without
//! rematerializing (a referenced asset may have changed since).

use std::collections::BTreeSet;

use chrono::Utc;
use serde::Serialize;

use cairn_assets::checks::CheckKind;
use cairn_catalog::{NewCheckResult, RunId, RunStatus};
use datafusion::sql::parser::DFParser;
use datafusion::sql::resolve::resolve_table_references;

use crate::error::EngineError;
use crate::model::partition_index::dimension_names;
use crate::model::selection;
use crate::model::workspace::Workspace;
use crate::quality::checks::{CheckOutcome, run_checks};
use crate::session::tables::{new_session, register_committed, register_source, source_error};

/// The checks of one committed asset partition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    /// The asset.
    pub asset: String,
    /// The partition key.
    pub partition: String,
    /// Each check's outcome.
    pub checks: Vec<CheckOutcome>,
}

/// Reruns the checks of the current versions of the selected assets and
/// records the results under a run of their own. `None` run when no
/// selected asset has checks and a committed version.
pub(crate) async fn check(
    ws: &Workspace,
    selection: &[String],
    command: &str,
) -> Result<(Option<RunId>, Vec<CheckReport>), EngineError> {
    let selected = selection::resolve(&ws.graph, selection)?;
    let with_checks: BTreeSet<String> = selected
        .iter()
        .filter(|a| {
            ws.project
                .assets
                .get(*a)
                .is_some_and(|x| !x.checks.is_empty())
        })
        .cloned()
        .collect();
    crate::compile::validate_before_run(ws, &with_checks).await?;
    let current = ws.catalog.current_versions()?;
    let files_of =
        |asset: &str, partition: Option<&str>| ws.current_files(&current, asset, partition);
    let units: Vec<(String, String)> = current
        .iter()
        .filter(|c| with_checks.contains(&c.asset))
        .map(|c| (c.asset.clone(), c.partition.clone()))
        .collect();
    if units.is_empty() {
        return Ok((None, Vec::new()));
    }
    crate::records::audit::audit_config_changes(ws)?;
    let run_id = crate::records::runs::begin_run(ws, command, "check", None)?;
    let now = ws.clock.now();
    let mut reports = Vec::new();
    let mut any_failed = false;
    for (asset_name, partition) in units {
        let Some(asset) = ws.project.assets.get(&asset_name) else {
            continue;
        };
        let ctx =
            new_session(&ws.storage).map_err(|e| EngineError::Internal(e.strip_backtrace()))?;
        // The tables checks may read: the asset's upstreams, relationship
        // targets and whatever `sql(...)` checks name.
        let mut tables: BTreeSet<String> = asset.upstream.iter().cloned().collect();
        tables.extend(
            ws.graph
                .relationship_targets(asset)
                .into_iter()
                .map(|t| t.name),
        );
        for c in &asset.checks {
            let CheckKind::Sql { query } = &c.kind else {
                continue;
            };
            for s in DFParser::parse_sql(query).into_iter().flatten() {
                if let Ok((refs, _)) = resolve_table_references(&s, true) {
                    tables.extend(refs.into_iter().map(|r| r.table().to_owned()));
                }
            }
        }
        tables.remove(&asset_name);
        let q = |e: datafusion::error::DataFusionError| EngineError::from_datafusion("", e);
        for t in &tables {
            if let Some(source) = ws.project.sources.get(t) {
                register_source(&ctx, source, &ws.project.config.storage)
                    .await
                    .map_err(|e| source_error(source, e))?;
            } else if ws.project.assets.contains_key(t) {
                let files = files_of(t, None)?;
                if !files.is_empty() {
                    register_committed(
                        &ctx,
                        &ws.storage,
                        t,
                        &files,
                        &dimension_names(&ws.project, t),
                        false,
                    )
                    .await
                    .map_err(q)?;
                }
            }
        }
        let own = files_of(&asset_name, Some(&partition))?;
        register_committed(
            &ctx,
            &ws.storage,
            &asset_name,
            &own,
            &dimension_names(&ws.project, &asset_name),
            false,
        )
        .await
        .map_err(q)?;
        let checks = run_checks(
            &ctx,
            &asset.checks,
            &asset_name,
            now,
            &std::collections::HashMap::new(),
        )
        .await;
        any_failed |= checks.iter().any(|c| !c.passed);
        let records: Vec<NewCheckResult> = checks
            .iter()
            .map(crate::records::runs::check_record)
            .collect();
        ws.catalog
            .record_check_results(&run_id, &asset_name, &partition, &records, Utc::now())?;
        reports.push(CheckReport {
            asset: asset_name,
            partition,
            checks,
        });
    }
    let status = if any_failed {
        RunStatus::Failed
    } else {
        RunStatus::Succeeded
    };
    ws.catalog
        .finish_run(&run_id, status, any_failed.then_some("checks failed"))?;
    let target = if selection.is_empty() {
        "*".to_owned()
    } else {
        selection.join(" ")
    };
    crate::records::audit::audit(
        ws,
        "check",
        &target,
        serde_json::json!({ "run_id": run_id, "command": command, "failed": any_failed }),
    )?;
    crate::execute::alerting::observe_checks(
        ws,
        &run_id,
        reports
            .iter()
            .map(|r| (r.asset.as_str(), r.partition.as_str(), r.checks.as_slice())),
    );
    Ok((Some(run_id), reports))
}
