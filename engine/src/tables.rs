//! Making sources and committed asset versions visible to DataFusion as
//! tables. Assets are read only through the catalog's committed file list,
//! never by listing storage, so uncommitted files are never seen.

use std::sync::Arc;

use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::Result as DfResult;
use datafusion::prelude::{
    CsvReadOptions, JsonReadOptions, ParquetReadOptions, SessionConfig, SessionContext,
};

use cairn_assets::{Source, SourceFormat};

use crate::storage::Storage;

/// A session for running asset SQL: the storage's object store registered,
/// identifiers normalized like the project loader does.
pub fn new_session(storage: &Storage) -> DfResult<SessionContext> {
    let config = SessionConfig::new().with_information_schema(true);
    let ctx = SessionContext::new_with_config(config);
    let url = url::Url::parse(&storage.store_url)
        .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
    ctx.register_object_store(&url, Arc::clone(&storage.store));
    Ok(ctx)
}

/// Registers a source under its name.
pub async fn register_source(ctx: &SessionContext, source: &Source) -> DfResult<()> {
    let mut path = source.path.to_string_lossy().into_owned();
    let ext = if source.path.is_dir() {
        if !path.ends_with('/') {
            path.push('/');
        }
        format!(".{}", source.format.extension())
    } else {
        source
            .path
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default()
    };
    match source.format {
        SourceFormat::Csv => {
            ctx.register_csv(
                &source.name,
                &path,
                CsvReadOptions::new().has_header(true).file_extension(&ext),
            )
            .await
        }
        SourceFormat::Parquet => {
            ctx.register_parquet(
                &source.name,
                &path,
                ParquetReadOptions::default().file_extension(&ext),
            )
            .await
        }
        SourceFormat::Json => {
            ctx.register_json(
                &source.name,
                &path,
                JsonReadOptions::default().file_extension(&ext),
            )
            .await
        }
    }
}

/// Registers (or replaces) the table `name` as exactly the given committed
/// Parquet files (paths relative to the storage root).
pub async fn register_committed(
    ctx: &SessionContext,
    storage: &Storage,
    name: &str,
    files: &[String],
) -> DfResult<()> {
    let urls = files
        .iter()
        .map(|f| ListingTableUrl::parse(storage.file_url(f)))
        .collect::<DfResult<Vec<_>>>()?;
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .infer_schema(&ctx.state())
        .await?;
    let table = ListingTable::try_new(config)?;
    ctx.deregister_table(name)?;
    ctx.register_table(name, Arc::new(table))?;
    Ok(())
}
