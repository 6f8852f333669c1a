//! The generated project of the orchestration benchmark, shared with
//! `cli/benches/serve.rs`: one Parquet source `events` and N small SQL
//! assets in a realistic DAG.
//!
//! - `a0001`..`a0008` ([`LEVEL1`]) aggregate the source (the only queries
//!   that scan it);
//! - every later asset `i` reads `a(i-8)` (eight parallel chains) and
//!   `a(i/2)` (fan-out / fan-in across the chains), alternating a join and
//!   a `union all` + group by; these tables hold ~1,000 rows each.
//!
//! Included with `#[path]` next to `common` (it uses
//! `crate::common::BoxResult`), not from `common/mod.rs`, so that benches
//! without this project carry none of it.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Float64Array, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::parquet::arrow::ArrowWriter;

use crate::common::BoxResult;

/// Level-1 assets: the ones that read the source.
pub const LEVEL1: usize = 8;

/// The name of asset `i` (1-based): `a0012`.
pub fn asset_name(i: usize) -> String {
    format!("a{i:04}")
}

/// Writes `cairn.toml` (the `events` source, then `extra_toml`),
/// `data/events.parquet` with `rows` rows and `assets/a0001.sql`..; every
/// asset file starts with `asset_header` (`--- key = value` lines).
pub fn write_project(
    root: &Path,
    n: usize,
    rows: usize,
    asset_header: &str,
    extra_toml: &str,
) -> BoxResult<()> {
    fs::create_dir_all(root.join("data"))?;
    fs::create_dir_all(root.join("assets"))?;
    fs::write(
        root.join("cairn.toml"),
        format!("[sources.events]\npath = \"data/events.parquet\"\n{extra_toml}"),
    )?;
    write_source(&root.join("data/events.parquet"), rows, 0)?;
    for i in 1..=n {
        fs::write(
            root.join("assets").join(format!("{}.sql", asset_name(i))),
            format!("{asset_header}{}", asset_sql(i)),
        )?;
    }
    Ok(())
}

/// The SQL of asset `i` (1-based).
pub fn asset_sql(i: usize) -> String {
    if i <= LEVEL1 {
        // `id / 1000` rather than `id` so that every level-1 asset covers all
        // 1,000 buckets and the joins downstream are not empty.
        return format!(
            "select bucket, count(*) as n, sum(amount) as total\nfrom events\nwhere (id / 1000) % {LEVEL1} = {}\ngroup by bucket\n",
            i - 1
        );
    }
    let p = asset_name(i - LEVEL1);
    let q = asset_name(i / 2);
    if p == q {
        return format!("select bucket, n, total from {p}\n");
    }
    if i.is_multiple_of(2) {
        format!(
            "select p.bucket, (p.n + q.n) / 2 as n, (p.total + q.total) / 2 as total\nfrom {p} as p\njoin {q} as q on p.bucket = q.bucket\n"
        )
    } else {
        format!(
            "select bucket, max(n) as n, min(total) as total\nfrom (\n    select bucket, n, total from {p}\n    union all\n    select bucket, n, total from {q}\n) as u\ngroup by bucket\n"
        )
    }
}

/// `id Int64`, `bucket Int64 = id % 1000`, `amount Float64`; a non-zero
/// `variant` adds it to every 97th amount (a change that reaches every
/// asset).
pub fn write_source(path: &Path, rows: usize, variant: u32) -> BoxResult<()> {
    const BATCH: usize = 65_536;
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("bucket", DataType::Int64, false),
        Field::new("amount", DataType::Float64, false),
    ]));
    let file = fs::File::create(path)?;
    let mut writer = ArrowWriter::try_new(file, Arc::clone(&schema), None)?;
    let mut start = 0usize;
    while start < rows {
        let end = (start + BATCH).min(rows);
        let ids: Vec<i64> = (start..end)
            .map(|i| i64::try_from(i).unwrap_or(i64::MAX))
            .collect();
        let buckets: Vec<i64> = ids.iter().map(|id| id % 1000).collect();
        let amounts: Vec<f64> = ids
            .iter()
            .map(|id| {
                let bump = if id % 97 == 0 {
                    f64::from(variant)
                } else {
                    0.0
                };
                ((id * 7919) % 10_000) as f64 / 100.0 + bump
            })
            .collect();
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(Int64Array::from(buckets)),
                Arc::new(Float64Array::from(amounts)),
            ],
        )?;
        writer.write(&batch)?;
        start = end;
    }
    writer.close()?;
    Ok(())
}
