//! Planning asset SQL against schemas only (no data read beyond source
//! headers, nothing executed): gives each asset's output schema, so that
//! mistakes such as a check on a column the asset does not produce are
//! reported with file and line before anything runs.

pub(crate) mod declared;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::empty::EmptyTable;
use datafusion::logical_expr::LogicalPlan;

use cairn_assets::checks::CheckKind;
use cairn_assets::{Diagnostic, ProjectError, closest_name, with_stand_ins};

use crate::compile::declared::{check_output, declared_schema};
use crate::error::EngineError;
use crate::model::graph::NodeKind;
use crate::model::partition_index::dimension_names;
use crate::model::workspace::Workspace;
use crate::session::committed_table::with_dimensions;
use crate::session::tables::read_only;
use crate::session::tables::{new_session, register_committed, register_source};

/// The output schema of each of `assets` (and of their upstream assets,
/// which planning needs).
pub async fn output_schemas(
    ws: &Workspace,
    assets: &BTreeSet<String>,
) -> Result<HashMap<String, SchemaRef>, EngineError> {
    Ok(logical_plans(ws, assets)
        .await?
        .into_iter()
        .map(|(name, plan)| {
            let schema: SchemaRef = Arc::new(plan.schema().as_arrow().clone());
            (name, schema)
        })
        .collect())
}

/// The unoptimized logical plan of each of `assets` and of their upstream
/// assets, planned against schemas only.
pub async fn logical_plans(
    ws: &Workspace,
    assets: &BTreeSet<String>,
) -> Result<HashMap<String, LogicalPlan>, EngineError> {
    let mut needed: BTreeSet<String> = assets.clone();
    for a in assets {
        needed.extend(ws.graph.ancestors(a));
    }
    let ctx = new_session(&ws.storage).map_err(|e| EngineError::Internal(e.strip_backtrace()))?;
    let mut schemas = HashMap::new();
    for name in ws.graph.order().filter(|n| needed.contains(*n)) {
        match ws.graph.kind(name) {
            Some(NodeKind::Source) => {
                if let Some(source) = ws.project.sources.get(name) {
                    register_source(&ctx, source, &ws.project.config.storage)
                        .await
                        .map_err(|e| {
                            EngineError::Query(format!(
                                "source `{name}` ({}): {}",
                                source.declared_path,
                                e.strip_backtrace()
                            ))
                        })?;
                }
            }
            Some(NodeKind::Asset) => {
                let Some(asset) = ws.project.assets.get(name) else {
                    continue;
                };
                let declared = declared_schema(&ctx, asset)
                    .await
                    .map_err(|d| EngineError::Project(ProjectError::one(d)))?;
                if asset.reads_itself() {
                    match &declared {
                        Some(schema) => {
                            let own = with_dimensions(schema, &dimension_names(&ws.project, name));
                            ctx.deregister_table(name)
                                .map_err(|e| EngineError::Internal(e.strip_backtrace()))?;
                            ctx.register_table(name, Arc::new(EmptyTable::new(own)))
                                .map_err(|e| EngineError::Internal(e.strip_backtrace()))?;
                        }
                        None => {
                            if !register_committed_schema(ws, &ctx, name).await? {
                                return Err(needs_declared_columns(asset));
                            }
                        }
                    }
                }
                let sql = with_stand_ins(&asset.sql).map_err(|p| {
                    EngineError::Internal(format!("unbound placeholder {} in {name}", p.name))
                })?;
                let plan = ctx.sql_with_options(&sql, read_only()).await.map_err(|e| {
                    EngineError::Project(ProjectError::one(
                        Diagnostic::new(
                            &asset.file,
                            None,
                            format!("cannot plan the query: {}", e.strip_backtrace()),
                        )
                        .with_hint("check column and table names against the upstream tables"),
                    ))
                })?;
                let schema: SchemaRef = Arc::new(plan.schema().as_arrow().clone());
                if let Some(declared) = &declared {
                    check_output(asset, declared, &schema)
                        .map_err(|d| EngineError::Project(ProjectError::one(d)))?;
                }
                ctx.deregister_table(name)
                    .map_err(|e| EngineError::Internal(e.strip_backtrace()))?;
                // Readers of a partitioned asset also see its dimensions.
                let as_read = with_dimensions(&schema, &dimension_names(&ws.project, name));
                ctx.register_table(name, Arc::new(EmptyTable::new(as_read)))
                    .map_err(|e| EngineError::Internal(e.strip_backtrace()))?;
                schemas.insert(name.to_owned(), plan.logical_plan().clone());
            }
            None => {}
        }
    }
    Ok(schemas)
}

/// Registers `name` as an empty table with the schema of its newest
/// committed version (any partition); `false` when nothing is committed.
async fn register_committed_schema(
    ws: &Workspace,
    ctx: &datafusion::prelude::SessionContext,
    name: &str,
) -> Result<bool, EngineError> {
    let Some(latest) = ws.catalog.history(name, 1)?.into_iter().next() else {
        return Ok(false);
    };
    let files = ws.current_files(std::slice::from_ref(&latest), name, None)?;
    if files.is_empty() {
        return Ok(false);
    }
    register_committed(
        ctx,
        &ws.storage,
        name,
        &files,
        &dimension_names(&ws.project, name),
        true,
    )
    .await
    .map_err(|e| {
        EngineError::Query(format!(
            "cannot read committed files of `{name}`: {}",
            e.strip_backtrace()
        ))
    })?;
    Ok(true)
}

/// The error for an asset reading its own earlier partitions when neither
/// a committed version nor `[columns]` says what that table looks like.
pub(crate) fn needs_declared_columns(asset: &cairn_assets::SqlAsset) -> EngineError {
    let name = &asset.name;
    EngineError::Project(ProjectError::one(
        Diagnostic::new(
            &asset.file,
            asset.reference_lines.get(name).copied(),
            format!(
                "`{name}` reads its own earlier partitions, but none is committed yet, so the columns of `{name}` are unknown before its first partition"
            ),
        )
        .with_hint(
            "declare its output columns in the header, one line each, e.g.\n    --- [columns]\n    --- day = \"DATE\"\n    --- total = \"BIGINT\"\n  (its first partition then reads an empty table of these columns)",
        ),
    ))
}

/// Before a run or a recheck: every check of `assets` names columns that
/// exist (in the asset, and for relationships in the referenced asset),
/// and every asset declaring `[columns]` or reading itself plans and
/// returns its declared columns. Every problem is reported at its
/// declaration line.
pub async fn validate_before_run(
    ws: &Workspace,
    assets: &BTreeSet<String>,
) -> Result<(), EngineError> {
    let declaring: BTreeSet<String> = assets
        .iter()
        .filter(|a| {
            ws.project
                .assets
                .get(*a)
                .is_some_and(|x| x.columns.is_some() || x.reads_itself())
        })
        .cloned()
        .collect();
    let with_checks: BTreeSet<String> = assets
        .iter()
        .filter(|a| {
            ws.project
                .assets
                .get(*a)
                .is_some_and(|x| !x.checks.is_empty())
        })
        .cloned()
        .collect();
    if with_checks.is_empty() && declaring.is_empty() {
        return Ok(());
    }
    let mut targets: BTreeSet<String> = with_checks.union(&declaring).cloned().collect();
    for a in &with_checks {
        if let Some(asset) = ws.project.assets.get(a) {
            targets.extend(
                ws.graph
                    .relationship_targets(asset)
                    .into_iter()
                    .filter(|t| t.kind == crate::model::graph::NodeKind::Asset)
                    .map(|t| t.name),
            );
        }
    }
    let schemas = output_schemas(ws, &targets).await?;
    let mut diagnostics = Vec::new();
    for name in &with_checks {
        let Some(asset) = ws.project.assets.get(name) else {
            continue;
        };
        let file = asset
            .config_file
            .clone()
            .unwrap_or_else(|| asset.file.clone());
        let columns = |asset: &str| -> Vec<String> {
            schemas
                .get(asset)
                .map(|s| s.fields().iter().map(|f| f.name().clone()).collect())
                .unwrap_or_default()
        };
        let own = columns(name);
        let unknown = |col: &str, cols: &[String], whose: &str| -> Option<Diagnostic> {
            if cols.iter().any(|c| c == col) {
                return None;
            }
            let hint = match closest_name(col, cols.iter().map(String::as_str)) {
                Some(c) => format!(
                    "did you mean `{c}`? {whose} columns are: {}",
                    cols.join(", ")
                ),
                None => format!("{whose} columns are: {}", cols.join(", ")),
            };
            Some(Diagnostic::new(&file, None, format!("unknown column `{col}`")).with_hint(hint))
        };
        for check in &asset.checks {
            for col in check.columns() {
                if let Some(mut d) = unknown(col, &own, &format!("`{name}`'s")) {
                    d.line = Some(check.line);
                    d.message = format!("check `{check}`: {}", d.message);
                    diagnostics.push(d);
                }
            }
            if let CheckKind::Relationships {
                to_asset,
                to_column,
                ..
            } = &check.kind
            {
                if !ws.graph.contains(to_asset) {
                    diagnostics.push(
                        Diagnostic::new(
                            &file,
                            Some(check.line),
                            format!("check `{check}`: unknown asset `{to_asset}`"),
                        )
                        .with_hint(
                            closest_name(to_asset, ws.graph.names())
                                .map(|c| format!("did you mean `{c}`?"))
                                .unwrap_or_default(),
                        ),
                    );
                } else if ws.project.assets.contains_key(to_asset)
                    && let Some(mut d) =
                        unknown(to_column, &columns(to_asset), &format!("`{to_asset}`'s"))
                {
                    d.line = Some(check.line);
                    d.message = format!("check `{check}`: {}", d.message);
                    diagnostics.push(d);
                }
            }
        }
    }
    if diagnostics.is_empty() {
        Ok(())
    } else {
        Err(EngineError::Project(ProjectError { diagnostics }))
    }
}
