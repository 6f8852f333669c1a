//! Ad-hoc SQL over committed asset versions and sources (`cairn query`).

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::sql::parser::DFParser;
use datafusion::sql::resolve::resolve_table_references;

use crate::error::EngineError;
use crate::model::partition_index::dimension_names;
use crate::model::workspace::Workspace;
use crate::session::tables::read_only;
use crate::session::tables::{new_session, register_committed, register_source, source_error};

pub(crate) async fn run_query(
    ws: &Workspace,
    sql: &str,
    as_of: Option<&crate::records::time_travel::AsOf>,
) -> Result<(SchemaRef, Vec<RecordBatch>), EngineError> {
    let q = |e: datafusion::error::DataFusionError| EngineError::from_datafusion("", e);
    // Register only what the query reads, and say clearly when it reads an
    // asset that has no committed version yet.
    let statements = DFParser::parse_sql(sql).map_err(q)?;
    let mut tables = Vec::new();
    let mut metadata = std::collections::BTreeSet::new();
    for statement in &statements {
        let (relations, _) = resolve_table_references(statement, true).map_err(q)?;
        for r in relations {
            if r.schema() == Some(crate::records::metadata_tables::SCHEMA) {
                if !crate::records::metadata_tables::TABLES.contains(&r.table()) {
                    return Err(EngineError::Usage(format!(
                        "unknown metadata table `{r}`; there are cairn.{}",
                        crate::records::metadata_tables::TABLES.join(", cairn.")
                    )));
                }
                metadata.insert(r.table().to_owned());
            } else {
                tables.push(r.table().to_owned());
            }
        }
    }
    tables.sort();
    tables.dedup();

    if tables.iter().any(|t| ws.project.assets.contains_key(t)) {
        ws.storage.check_reachable().await?;
    }
    let ctx = new_session(&ws.storage).map_err(|e| EngineError::Internal(e.strip_backtrace()))?;
    crate::records::metadata_tables::register(&ctx, ws, &metadata).await?;
    let current = ws.catalog.current_versions()?;
    let past = match as_of {
        Some(a) => Some(crate::records::time_travel::files_as_of(ws, a)?),
        None => None,
    };
    for name in &tables {
        if let Some(source) = ws.project.sources.get(name) {
            register_source(&ctx, source, &ws.project.config.storage)
                .await
                .map_err(|e| source_error(source, e))?;
        } else if ws.project.assets.contains_key(name) {
            let mut files = Vec::new();
            match &past {
                Some(past) => files.extend(past.get(name).cloned().unwrap_or_default()),
                None => files.extend(ws.current_files(&current, name, None)?),
            }
            if files.is_empty() {
                return Err(EngineError::Usage(if past.is_some() {
                    format!("asset `{name}` had no committed version at that point")
                } else {
                    format!(
                        "asset `{name}` has not been materialized yet; run `cairn materialize {name}` first"
                    )
                }));
            }
            register_committed(
                &ctx,
                &ws.storage,
                name,
                &files,
                &dimension_names(&ws.project, name),
                false,
            )
            .await
            .map_err(q)?;
        }
    }
    let df = ctx.sql_with_options(sql, read_only()).await.map_err(q)?;
    let schema = df.schema().inner().clone();
    let batches = df.collect().await.map_err(q)?;
    Ok((schema, batches))
}
