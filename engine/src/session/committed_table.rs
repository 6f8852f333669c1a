//! A partitioned asset's committed files as one DataFusion table whose
//! partition dimensions are columns, their values taken from each file's
//! hive folders (`date=2024-05-01/region=eu/`) — the table DuckDB, Spark and
//! pyarrow see when they read the same files with hive partitioning. The
//! files are exactly the ones the catalog lists: storage is never listed.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::ScalarValue;
use datafusion::datasource::TableProvider;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::object_store::ObjectStoreUrl;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::table_schema::TableSchemaBuilder;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_datasource::compute_all_files_statistics;

use futures::{StreamExt, TryStreamExt, stream};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStoreExt};

use crate::model::storage::{CommittedFile, Storage};

/// The dimension columns of a partitioned table: one string column per
/// dimension, named like its hive folder.
pub fn dimension_fields(dims: &[String]) -> Vec<FieldRef> {
    dims.iter()
        .map(|d| Arc::new(Field::new(d, DataType::Utf8, false)))
        .collect()
}

/// `schema` followed by the dimension columns.
pub fn with_dimensions(schema: &Schema, dims: &[String]) -> SchemaRef {
    let mut fields: Vec<FieldRef> = schema.fields().iter().cloned().collect();
    fields.extend(dimension_fields(dims));
    Arc::new(Schema::new(fields))
}

/// The value of each dimension in a file's path (`.../date=2024-05-01/...`).
pub fn dimension_values(path: &str, dims: &[String]) -> Result<Vec<String>, String> {
    dims.iter()
        .map(|d| {
            let prefix = format!("{d}=");
            path.split('/')
                .find_map(|segment| segment.strip_prefix(prefix.as_str()))
                .map(str::to_owned)
                .ok_or_else(|| {
                    format!("committed file `{path}` has no `{d}=` folder for its partition")
                })
        })
        .collect()
}

/// How many metadata requests (HEADs, footer reads) registering a table
/// has in flight at once: a year of daily partitions on a remote store is
/// then 365/16 round trips deep instead of 365.
const METADATA_CONCURRENCY: usize = 16;

/// The object metadata of a committed file of known size, without asking
/// the store. `last_modified` is a fixed instant (the UNIX epoch) and there
/// is no e-tag or version: DataFusion uses them only to tell whether a
/// cached footer is still the file's, and a committed file's name is never
/// reused for other bytes (each run writes files named after it), so the
/// path and size alone identify its content.
pub fn known_meta(location: ObjectPath, size: u64) -> ObjectMeta {
    ObjectMeta {
        location,
        last_modified: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
        size,
        e_tag: None,
        version: None,
    }
}

/// Committed Parquet files of a partitioned asset with their dimension
/// values.
#[derive(Debug)]
pub struct CommittedTable {
    store_url: ObjectStoreUrl,
    file_schema: SchemaRef,
    dims: Vec<FieldRef>,
    schema: SchemaRef,
    files: Vec<PartitionedFile>,
}

impl CommittedTable {
    /// Reads the files' schema and footer statistics. A file's object
    /// metadata comes from its catalog size when known (see
    /// [`known_meta`]), otherwise from a HEAD.
    pub async fn try_new(
        state: &dyn Session,
        storage: &Storage,
        files: &[CommittedFile],
        dims: &[String],
    ) -> DfResult<CommittedTable> {
        let store_url = ObjectStoreUrl::parse(&storage.store_url)?;
        let store = state.runtime_env().object_store(&store_url)?;
        // On a remote store each request is a round trip: ask for the
        // unknown sizes and the footers many at a time, keeping their
        // order. (Owned items: a closure taking a reference would make the
        // spawned run's future not `Send` for every lifetime.)
        let located: Vec<(ObjectPath, Option<u64>)> = files
            .iter()
            .map(|f| (storage.object_path(&f.path), f.size))
            .collect();
        let metas: Vec<ObjectMeta> = stream::iter(located)
            .map(|(location, size)| {
                let store = Arc::clone(&store);
                async move {
                    match size {
                        Some(size) => Ok(known_meta(location, size)),
                        None => store.head(&location).await,
                    }
                }
            })
            .buffered(METADATA_CONCURRENCY)
            .try_collect()
            .await?;
        let format = ParquetFormat::default();
        let file_schema = format.infer_schema(state, &store, &metas).await?;
        // Footer statistics (row counts, min/max): `count(*)` and join
        // planning need not scan.
        let stats: Vec<_> = stream::iter(metas.clone())
            .map(|meta| {
                let (store, schema, format) =
                    (Arc::clone(&store), Arc::clone(&file_schema), &format);
                async move { format.infer_stats(state, &store, schema, &meta).await }
            })
            .buffered(METADATA_CONCURRENCY)
            .try_collect()
            .await?;
        let mut partitioned = Vec::with_capacity(files.len());
        for ((file, meta), stats) in files.iter().zip(metas).zip(stats) {
            let values = dimension_values(&file.path, dims).map_err(DataFusionError::Plan)?;
            let mut pf = PartitionedFile::from(meta);
            pf.partition_values = values
                .into_iter()
                .map(|v| ScalarValue::Utf8(Some(v)))
                .collect();
            partitioned.push(pf.with_statistics(Arc::new(stats)));
        }
        Ok(CommittedTable {
            store_url,
            schema: with_dimensions(&file_schema, dims),
            file_schema,
            dims: dimension_fields(dims),
            files: partitioned,
        })
    }
}

#[async_trait]
impl TableProvider for CommittedTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let format = ParquetFormat::default();
        let table_schema = TableSchemaBuilder::from(&self.file_schema)
            .with_table_partition_cols(self.dims.clone())
            .build();
        let groups = FileGroup::new(self.files.clone())
            .split_files(state.config().target_partitions().max(1));
        let (groups, statistics) =
            compute_all_files_statistics(groups, self.schema(), true, false)?;
        let config =
            FileScanConfigBuilder::new(self.store_url.clone(), format.file_source(table_schema))
                .with_file_groups(groups)
                .with_statistics(statistics)
                .with_projection_indices(projection.cloned())?
                .with_limit(limit)
                .build();
        format.create_physical_plan(state, config).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimension_values_come_from_the_hive_folders() {
        let dims = vec!["date".to_owned(), "region".to_owned()];
        assert_eq!(
            dimension_values("sales/date=2024-05-01/region=eu/r-00000.parquet", &dims),
            Ok(vec!["2024-05-01".to_owned(), "eu".to_owned()])
        );
        assert!(
            dimension_values("sales/date=2024-05-01/r-00000.parquet", &dims)
                .is_err_and(|e| e.contains("no `region=` folder"))
        );
        assert_eq!(dimension_values("sales/r.parquet", &[]), Ok(Vec::new()));
    }
}
