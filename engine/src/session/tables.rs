//! Making sources and committed asset versions visible to DataFusion as
//! tables. Assets are read only through the catalog's committed file list,
//! never by listing storage, so uncommitted files are never seen.

use std::sync::Arc;

use datafusion::datasource::TableProvider;
use datafusion::datasource::empty::EmptyTable;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::Result as DfResult;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::{
    CsvReadOptions, JsonReadOptions, ParquetReadOptions, SessionConfig, SessionContext,
};

use cairn_assets::{Source, SourceFormat, StorageConfig};

use crate::error::EngineError;
use crate::session::committed_table::CommittedTable;
use crate::state::sources::source_files;

use crate::model::storage::{CommittedFile, Storage};

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

/// The configuration every materialization runs with: one partition per
/// query, so that identical inputs and code give identical output bits
/// (and data versions) whatever the core count, `--jobs` or thread timing.
///
/// With several partitions, DataFusion's final aggregation folds partial
/// results (or, once partial aggregation is skipped for high-cardinality
/// groups, the raw rows) in the order `RepartitionExec` happens to deliver
/// them, and a float `SUM` or `AVG` depends on that order in its low bits;
/// a `CollectLeft` join builds from coalesced partitions in arrival order,
/// which reorders its output for the operators above it. The default
/// partition count is also the core count, which changes how files are
/// split. One partition removes all of it at the root, for every operator
/// and function, rather than masking differences in the hash. Parallelism
/// comes from building independent units side by side (`--jobs`, default
/// the core count); measured on the peers' 100-model DAG, see README.
pub fn reproducible_config() -> SessionConfig {
    SessionConfig::new()
        .with_information_schema(true)
        .with_target_partitions(1)
}

/// A session whose I/O goes through `store` and whose memory comes from
/// `pool` (the meters of one materialization), configured by `config`
/// (for a build: [`reproducible_config`], as its engine adjusts it).
pub fn metered_session(
    storage: &Storage,
    store: Arc<dyn object_store::ObjectStore>,
    pool: Arc<dyn datafusion::execution::memory_pool::MemoryPool>,
    config: SessionConfig,
) -> DfResult<SessionContext> {
    let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
        .with_memory_pool(pool)
        .build_arc()?;
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    let url = url::Url::parse(&storage.store_url)
        .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
    ctx.register_object_store(&url, store);
    Ok(ctx)
}

/// Registers a source under its name. A source in an object store is read
/// there, its store registered in `ctx` (with the `[storage]` connection
/// keys when `storage` is the same kind of store).
pub async fn register_source(
    ctx: &SessionContext,
    source: &Source,
    storage: &StorageConfig,
) -> DfResult<()> {
    let (path, ext) = match &source.url {
        Some(url) => {
            register_source_store(ctx, url, storage)?;
            if source.is_remote_folder() {
                let mut path = url.clone();
                if !path.ends_with('/') {
                    path.push('/');
                }
                (path, format!(".{}", source.format.extension()))
            } else {
                let ext = url
                    .rsplit_once('.')
                    .map(|(_, e)| format!(".{e}"))
                    .unwrap_or_default();
                (url.clone(), ext)
            }
        }
        None => local_source_path(source),
    };
    match source.format {
        SourceFormat::Csv => {
            ctx.register_csv(
                &source.name,
                &path,
                CsvReadOptions::new().has_header(true).file_extension(&ext),
            )
            .await?;
            refuse_no_columns(ctx, source).await
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

/// A CSV source without a header row (an empty file, or only empty files
/// in its folder) has no columns: every query of it would fail on a column
/// "not found", far from the cause.
async fn refuse_no_columns(ctx: &SessionContext, source: &Source) -> DfResult<()> {
    let table = ctx.table_provider(source.name.as_str()).await?;
    if !table.schema().fields().is_empty() {
        return Ok(());
    }
    ctx.deregister_table(source.name.as_str())?;
    Err(datafusion::error::DataFusionError::Plan(
        "it has no columns: the CSV is empty (a CSV source starts with a header row naming its columns, e.g. `id,name`)".to_owned(),
    ))
}

/// Registers (or replaces) the table `name` as exactly the given committed
/// Parquet files; a partitioned asset's `dims` become columns valued from
/// each file's hive folders, and its files' known sizes spare a HEAD each.
/// With `empty`, the files only give the schema and the table has no rows.
pub async fn register_committed(
    ctx: &SessionContext,
    storage: &Storage,
    name: &str,
    files: &[CommittedFile],
    dims: &[String],
    empty: bool,
) -> DfResult<()> {
    if files.is_empty() {
        return Err(datafusion::error::DataFusionError::Plan(format!(
            "`{name}` has no committed version; materialize it first"
        )));
    }
    if !dims.is_empty() {
        let table = CommittedTable::try_new(&ctx.state(), storage, files, dims).await?;
        ctx.deregister_table(name)?;
        if empty {
            ctx.register_table(name, Arc::new(EmptyTable::new(table.schema())))?;
        } else {
            ctx.register_table(name, Arc::new(table))?;
        }
        return Ok(());
    }
    // An unpartitioned asset has one file per version: the listing table's
    // one HEAD per file does not grow with the number of partitions read.
    let urls = files
        .iter()
        .map(|f| ListingTableUrl::parse(storage.file_url(&f.path)))
        .collect::<DfResult<Vec<_>>>()?;
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .infer_schema(&ctx.state())
        .await?;
    ctx.deregister_table(name)?;
    if empty {
        let schema = config.file_schema.clone().ok_or_else(|| {
            datafusion::error::DataFusionError::Internal(format!("no schema for `{name}`"))
        })?;
        ctx.register_table(name, Arc::new(EmptyTable::new(schema)))?;
    } else {
        ctx.register_table(name, Arc::new(ListingTable::try_new(config)?))?;
    }
    Ok(())
}

/// A failure reading `source`, naming it and its declared path.
pub fn source_error(source: &Source, e: datafusion::error::DataFusionError) -> EngineError {
    EngineError::from_datafusion(
        &format!("source `{}` ({})", source.name, source.declared_path),
        e,
    )
}

/// The path and file extension DataFusion reads a local source with.
fn local_source_path(source: &Source) -> (String, String) {
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
    (path, ext)
}

/// Registers in `ctx` the object store a remote source at `url` is read
/// from.
fn register_source_store(ctx: &SessionContext, url: &str, storage: &StorageConfig) -> DfResult<()> {
    let store = Storage::open_source(url, storage)
        .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
    let store_url = url::Url::parse(&store.store_url)
        .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
    ctx.register_object_store(&store_url, store.store);
    Ok(())
}

/// Registers a source as seen by one partition: all of it when it is not
/// partitioned, otherwise exactly the files of the mapped partitions `keys`
/// (an empty table with the source's schema when they hold no files).
pub async fn register_source_partitions(
    ctx: &SessionContext,
    source: &Source,
    keys: &[String],
    storage: &StorageConfig,
) -> Result<(), EngineError> {
    let q = |e| source_error(source, e);
    if source.partitions.is_none() {
        return register_source(ctx, source, storage).await.map_err(q);
    }
    if let Some(url) = &source.url {
        register_source_store(ctx, url, storage).map_err(q)?;
    }
    let mut urls = Vec::new();
    for key in keys {
        for file in source_files(source, key, storage)? {
            urls.push(ListingTableUrl::parse(&file.location).map_err(q)?);
        }
    }
    let format: Arc<dyn FileFormat> = match source.format {
        SourceFormat::Csv => Arc::new(CsvFormat::default().with_has_header(true)),
        SourceFormat::Parquet => Arc::new(ParquetFormat::default()),
        SourceFormat::Json => Arc::new(JsonFormat::default()),
    };
    let ext = format!(".{}", source.format.extension());
    let options = ListingOptions::new(format).with_file_extension(&ext);
    ctx.deregister_table(&source.name).map_err(q)?;
    if urls.is_empty() {
        // No files in these partitions: an empty table with the schema the
        // source has elsewhere, so the query still plans.
        let mut root = match &source.url {
            Some(url) => url.clone(),
            None => source.path.to_string_lossy().into_owned(),
        };
        if !root.ends_with('/') {
            root.push('/');
        }
        let schema = options
            .infer_schema(&ctx.state(), &ListingTableUrl::parse(&root).map_err(q)?)
            .await
            .map_err(q)?;
        ctx.register_table(&source.name, Arc::new(EmptyTable::new(schema)))
            .map_err(q)?;
        return Ok(());
    }
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .infer_schema(&ctx.state())
        .await
        .map_err(q)?;
    ctx.register_table(
        &source.name,
        Arc::new(ListingTable::try_new(config).map_err(q)?),
    )
    .map_err(q)?;
    Ok(())
}

/// Read-only SQL: assets are queries, never statements.
pub fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}
