//! Rows added and removed between the previous and the new version of a
//! partition, as a true multiset difference: a row present three times
//! before and once now counts two removed.
//!
//! Both sides are reduced to per-row hashes ([`RowHash`]: the first 128
//! bits of the blake3 hash of the row's Arrow row encoding, the same hash
//! the data version sums). The new output's are kept while it is written
//! (no second read); the previous version's come from one pass over its
//! Parquet files. Sorting both and walking them once subtracts the counts
//! per hash. Two distinct rows share a hash with probability 2^-128, so
//! among n rows a miscount has probability below n² / 2^129 (about 10^-21
//! at a billion rows).
//!
//! Rows compare as SQL's grouping and set operations compare them (and
//! as Spark and PostgreSQL do): null equals null, `-0.0` equals `0.0`, a
//! NaN equals any NaN. The data version sees exact bits instead (`1 / x`
//! tells the zeros apart, so early cutoff must not), which is why a data
//! version can change while no row was added or removed.
//!
//! Holding hashes costs 16 bytes a row per side. Past [`MAX_HELD_ROWS`] on
//! either side the counts come from SQL instead ([`by_sql`]): rows counted
//! per distinct value on each side and the counts joined with null-safe
//! equality, which DataFusion runs with its own memory management. Never
//! `EXCEPT ALL`, which DataFusion 55 gets wrong with duplicates (it drops
//! every copy of a matched row: apache/datafusion#12956).

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{Array, Int64Array};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::parquet::arrow::arrow_reader::ArrowReaderOptions;
use datafusion::parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStreamBuilder};
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use datafusion::prelude::SessionContext;
use futures::FutureExt;
use futures::StreamExt;
use futures::future::BoxFuture;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::model::version::{DataHasher, RowHash};

/// Row hashes held per side at most (16 bytes each: 128 MiB per side).
pub const MAX_HELD_ROWS: usize = 8 << 20;

/// Row hashes held per side under a run memory limit of `limit` bytes:
/// both sides together take at most a quarter of it, so a bounded run
/// stays near its bound (past it, [`by_sql`] counts with DataFusion's
/// spilling operators).
pub fn max_held_rows(limit: Option<u64>) -> usize {
    match limit {
        Some(bytes) => MAX_HELD_ROWS.min(usize::try_from(bytes / 4 / 32).unwrap_or(usize::MAX)),
        None => MAX_HELD_ROWS,
    }
}

/// Rows added and removed, counted with multiplicity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Changes {
    /// Rows of the new version not matched by a row of the previous one.
    pub added: u64,
    /// Rows of the previous version not matched by a row of the new one.
    pub removed: u64,
}

/// The multiset difference of two bags of row hashes.
pub fn difference(mut new: Vec<RowHash>, mut previous: Vec<RowHash>) -> Changes {
    new.sort_unstable();
    previous.sort_unstable();
    let (mut i, mut j) = (0, 0);
    let mut changes = Changes {
        added: 0,
        removed: 0,
    };
    while i < new.len() && j < previous.len() {
        match new[i].cmp(&previous[j]) {
            std::cmp::Ordering::Less => {
                changes.added += 1;
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                changes.removed += 1;
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
            }
        }
    }
    changes.added += (new.len() - i) as u64;
    changes.removed += (previous.len() - j) as u64;
    changes
}

/// The previous version's rows, as [`previous_row_hashes`] read them.
#[derive(Debug)]
pub enum Previous {
    /// Every row's hash.
    Hashes(Vec<RowHash>),
    /// More rows than [`MAX_HELD_ROWS`].
    TooLarge,
    /// Its columns (names and types, in order) differ from the new
    /// output's: there is no row-by-row comparison to make.
    OtherColumns,
}

/// Hashes every row of the previous version's Parquet `files`, read as
/// the new output's `schema` (one pass, no DataFusion plan). Each file
/// comes with its size when the catalog knows it (no HEAD then).
pub async fn previous_row_hashes(
    store: Arc<dyn ObjectStore>,
    files: &[(Path, Option<u64>)],
    schema: &Schema,
    limit: usize,
) -> DfResult<Previous> {
    let mut hasher = DataHasher::new(schema)?.keeping_row_hashes(limit);
    for (file, size) in files {
        let size = match size {
            Some(size) => *size,
            None => store.head(file).await.map_err(ParquetError::from)?.size,
        };
        let reader = StoreFile {
            store: Arc::clone(&store),
            path: file.clone(),
            size,
        };
        let builder = ParquetRecordBatchStreamBuilder::new(reader).await?;
        if !same_columns(builder.schema(), schema) {
            return Ok(Previous::OtherColumns);
        }
        let mut stream = builder.build()?;
        while let Some(batch) = stream.next().await {
            hasher.update(&batch?)?;
        }
    }
    Ok(match hasher.take_row_hashes() {
        Some(hashes) => Previous::Hashes(hashes),
        None => Previous::TooLarge,
    })
}

/// One Parquet file of an object store, read by ranges.
struct StoreFile {
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
}

impl AsyncFileReader for StoreFile {
    fn get_bytes(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> BoxFuture<'_, datafusion::parquet::errors::Result<Bytes>> {
        async move { Ok(self.store.get_range(&self.path, range).await?) }.boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, datafusion::parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let metadata = ParquetMetaDataReader::new()
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

/// Same column names and types, in order (nullability aside, which
/// DataFusion may infer differently for the same data).
pub fn same_columns(a: &Schema, b: &Schema) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields()
            .iter()
            .zip(b.fields())
            .all(|(x, y)| x.name() == y.name() && x.data_type() == y.data_type())
}

/// The same counts in SQL, for sides too large to hold: each side's rows
/// counted per distinct row (`GROUP BY` every column), the two counts
/// joined with null-safe equality, and the positive parts of their
/// differences summed. `new` and `previous` are registered tables of the
/// same columns.
pub async fn by_sql(ctx: &SessionContext, new: &str, previous: &str) -> DfResult<Changes> {
    let new_schema: SchemaRef = ctx.table_provider(new).await?.schema();
    let previous_schema: SchemaRef = ctx.table_provider(previous).await?.schema();
    if !same_columns(&new_schema, &previous_schema) {
        return Err(DataFusionError::Plan(format!(
            "`{new}` and `{previous}` have different columns"
        )));
    }
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let columns: Vec<String> = new_schema
        .fields()
        .iter()
        .map(|f| quote(f.name()))
        .collect();
    let list = columns.join(", ");
    let on = columns
        .iter()
        .map(|c| format!("(n.{c} IS NOT DISTINCT FROM p.{c})"))
        .collect::<Vec<_>>()
        .join(" AND ");
    // Floats made canonical as the row hashes make them (-0.0 as 0.0, one NaN).
    let canonical: Vec<String> = new_schema
        .fields()
        .iter()
        .zip(&columns)
        .map(|(f, c)| match f.data_type() {
            t @ (DataType::Float16 | DataType::Float32 | DataType::Float64) => format!(
                "CASE WHEN isnan({c}) THEN arrow_cast('NaN', '{t}') \
                 WHEN {c} = 0 THEN arrow_cast(0, '{t}') ELSE {c} END AS {c}"
            ),
            _ => c.clone(),
        })
        .collect();
    let counts = |table: &str| {
        format!(
            "SELECT {list}, COUNT(*) AS __cairn_rows FROM (SELECT {} FROM {}) GROUP BY {list}",
            canonical.join(", "),
            quote(table)
        )
    };
    let sql = format!(
        "WITH n AS ({}), p AS ({}) \
         SELECT \
           CAST(COALESCE(SUM(GREATEST(COALESCE(n.__cairn_rows, 0) - COALESCE(p.__cairn_rows, 0), 0)), 0) AS BIGINT), \
           CAST(COALESCE(SUM(GREATEST(COALESCE(p.__cairn_rows, 0) - COALESCE(n.__cairn_rows, 0), 0)), 0) AS BIGINT) \
         FROM n FULL OUTER JOIN p ON {on}",
        counts(new),
        counts(previous)
    );
    let batches = ctx
        .sql_with_options(&sql, crate::session::tables::read_only())
        .await?
        .collect()
        .await?;
    let value = |column: usize| -> DfResult<u64> {
        let array = batches
            .first()
            .and_then(|b| b.column(column).as_any().downcast_ref::<Int64Array>())
            .filter(|a| a.len() == 1 && a.is_valid(0))
            .ok_or_else(|| DataFusionError::Internal("row change counts: no result".into()))?;
        u64::try_from(array.value(0))
            .map_err(|e| DataFusionError::Internal(format!("row change counts: {e}")))
    };
    Ok(Changes {
        added: value(0)?,
        removed: value(1)?,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use datafusion::arrow::array::{
        ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray,
    };
    use datafusion::arrow::datatypes::Field;
    use datafusion::datasource::MemTable;

    use super::*;

    /// A row as the reference counts it: each value as text.
    type Row = Vec<String>;

    /// `(k, x, b)`.
    type TestRow = (Option<&'static str>, Option<f64>, Option<bool>);

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("x", DataType::Float64, true),
            Field::new("b", DataType::Boolean, true),
        ]))
    }

    fn batch(rows: &[TestRow]) -> RecordBatch {
        let k: ArrayRef = Arc::new(StringArray::from(
            rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        ));
        let x: ArrayRef = Arc::new(Float64Array::from(
            rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        ));
        let b: ArrayRef = Arc::new(BooleanArray::from(
            rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        ));
        RecordBatch::try_new(schema(), vec![k, x, b]).unwrap_or_else(|e| panic!("{e}"))
    }

    fn hashes(b: &RecordBatch) -> Vec<RowHash> {
        let mut h = DataHasher::new(&b.schema())
            .unwrap_or_else(|e| panic!("{e}"))
            .keeping_row_hashes(usize::MAX);
        h.update(b).unwrap_or_else(|e| panic!("{e}"));
        h.take_row_hashes().unwrap_or_else(|| panic!("kept"))
    }

    /// The reference: counts per row, subtracted; floats compare as SQL
    /// groups them (`-0.0` as `0.0`, NaN equal to NaN).
    fn reference(new: &[TestRow], old: &[TestRow]) -> Changes {
        let float = |x: f64| {
            if x.is_nan() {
                "NaN".to_owned()
            } else if x == 0.0 {
                "0".to_owned()
            } else {
                x.to_bits().to_string()
            }
        };
        let key = |r: &TestRow| -> Row {
            vec![
                format!("{:?}", r.0),
                format!("{:?}", r.1.map(float)),
                format!("{:?}", r.2),
            ]
        };
        let mut counts: HashMap<Row, i64> = HashMap::new();
        for r in new {
            *counts.entry(key(r)).or_default() += 1;
        }
        for r in old {
            *counts.entry(key(r)).or_default() -= 1;
        }
        Changes {
            added: counts.values().filter(|c| **c > 0).map(|c| *c as u64).sum(),
            removed: counts
                .values()
                .filter(|c| **c < 0)
                .map(|c| (-*c) as u64)
                .sum(),
        }
    }

    /// Hash difference, SQL formulation and the reference agree.
    fn check(new: &[TestRow], old: &[TestRow], expected: (u64, u64)) {
        let want = reference(new, old);
        assert_eq!((want.added, want.removed), expected, "reference");
        let (nb, ob) = (batch(new), batch(old));
        assert_eq!(difference(hashes(&nb), hashes(&ob)), want, "hashes");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let by_sql = rt.block_on(async {
            let ctx = SessionContext::new();
            for (name, b) in [("new", nb), ("old", ob)] {
                let t =
                    MemTable::try_new(schema(), vec![vec![b]]).unwrap_or_else(|e| panic!("{e}"));
                ctx.register_table(name, Arc::new(t))
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            by_sql(&ctx, "new", "old")
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        });
        assert_eq!(by_sql, want, "sql");
    }

    const A: TestRow = (Some("a"), Some(1.0), Some(true));
    const B: TestRow = (Some("b"), Some(2.0), Some(false));

    #[test]
    fn duplicates_count_one_copy_per_match() {
        // The reproduction: a x3, b -> a, b x2.
        check(&[A, B, B], &[A, A, A, B], (1, 2));
        check(&[A, A, A, B], &[A, B, B], (2, 1));
    }

    #[test]
    fn all_rows_equal() {
        check(&[A, A, A], &[A, A], (1, 0));
        check(&[A, A], &[A, A], (0, 0));
    }

    #[test]
    fn nulls_in_every_column_equal_nulls() {
        let n = (None, None, None);
        check(&[n, n, A], &[n, A, A], (1, 1));
        check(
            &[(None, Some(1.0), None)],
            &[(Some("a"), None, None)],
            (1, 1),
        );
    }

    #[test]
    fn an_empty_side() {
        check(&[], &[A, B, B], (0, 3));
        check(&[A, B, B], &[], (3, 0));
        check(&[], &[], (0, 0));
    }

    #[test]
    fn floats_compare_as_sql_groups_them() {
        let z = |x: f64| (Some("z"), Some(x), Some(true));
        check(&[z(0.0), z(-0.0)], &[z(-0.0)], (1, 0));
        check(&[z(0.0)], &[z(-0.0), z(-0.0)], (0, 1));
        check(&[z(f64::NAN), z(f64::NAN)], &[z(f64::NAN)], (1, 0));
        check(
            &[z(f64::NAN), z(-0.0)],
            &[z(-f64::NAN), z(0.0), z(1.0)],
            (0, 1),
        );
        check(
            &[z(f64::INFINITY), z(1.5)],
            &[z(f64::NEG_INFINITY), z(1.5)],
            (1, 1),
        );
    }
}
