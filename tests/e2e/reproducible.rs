//! Identical inputs and code give identical data versions, whatever
//! `--jobs`, the core count and thread timing: float aggregates included,
//! whose low bits depend on the order DataFusion adds them in.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Float64Array, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::file::properties::WriterProperties;

use crate::util::Project;

/// Input files of the `events` source.
const FILES: usize = 4;
/// Rows per file: every key once per file, so a partition's first 100,000
/// rows are all distinct groups and DataFusion skips partial aggregation
/// (the shape where arrival order decides the sums).
const KEYS: i64 = 100_000;

/// `events/part-N.parquet`: `k` (each key once per file, shuffled), `g =
/// k % 997`, `x` floats spread over nine orders of magnitude, from a fixed
/// seed.
pub(crate) fn write_events(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new("g", DataType::Int64, false),
        Field::new("x", DataType::Float64, false),
    ]));
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        // xorshift64*: a fixed, platform-independent sequence.
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    for f in 0..FILES {
        let mut keys: Vec<i64> = (0..KEYS).collect();
        for i in (1..keys.len()).rev() {
            let j = (next() % (i as u64 + 1)) as usize;
            keys.swap(i, j);
        }
        let groups: Vec<i64> = keys.iter().map(|k| k % 997).collect();
        let xs: Vec<f64> = keys
            .iter()
            .map(|_| {
                let unit = (next() >> 11) as f64 / (1u64 << 53) as f64;
                unit * 10f64.powi((next() % 10) as i32 - 3)
            })
            .collect();
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from(keys)),
                Arc::new(Int64Array::from(groups)),
                Arc::new(Float64Array::from(xs)),
            ],
        )
        .unwrap();
        let file = fs::File::create(dir.join(format!("part-{f}.parquet"))).unwrap();
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(16_384))
            .build();
        let mut writer = ArrowWriter::try_new(file, Arc::clone(&schema), Some(props)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }
}

/// Sums and averages over many groups (high and low cardinality), a join
/// of two aggregates aggregated again, and a scalar subquery.
pub(crate) fn project(events: &Path) -> Project {
    let p = Project::with_files(&[
        (
            "cairn.toml",
            "[sources.events]\npath = \"data/events\"\nformat = \"parquet\"\n",
        ),
        (
            "assets/by_key.sql",
            "select k, sum(x) as total, avg(x) as mean, count(*) as n from events group by k",
        ),
        (
            "assets/by_group.sql",
            "select g, sum(x) as total, avg(x * 1.5) as mean from events group by g",
        ),
        (
            "assets/weighted.sql",
            "select b.g, sum(k.total * 0.25) as weighted, avg(k.mean) as mean_of_means\n\
             from by_key as k join by_group as b on k.k % 997 = b.g\ngroup by b.g",
        ),
        (
            "assets/share.sql",
            "select g, total / (select sum(total) from by_group) as share from by_group",
        ),
    ]);
    let data = p.path("data/events");
    fs::create_dir_all(&data).unwrap();
    for e in fs::read_dir(events).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), data.join(e.file_name())).unwrap();
    }
    p
}

/// Data version of every current materialization.
pub(crate) fn data_versions(p: &Project) -> BTreeMap<String, String> {
    let rows = p.query_json(
        "select asset, data_version from cairn.materializations where is_current order by asset",
    );
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["asset"].as_str().unwrap().to_owned(),
                r["data_version"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn float_aggregates_give_the_same_data_versions_at_any_jobs_and_timing() {
    let events = tempfile::tempdir().unwrap();
    write_events(events.path());
    let mut reference: Option<BTreeMap<String, String>> = None;
    for round in 0..5 {
        for jobs in ["1", "4"] {
            let p = project(events.path());
            let (_, outcomes) = p.materialize(&["--jobs", jobs]);
            assert_eq!(outcomes.len(), 4, "{outcomes:?}");
            let versions = data_versions(&p);
            assert_eq!(versions.len(), 4, "{versions:?}");
            match &reference {
                None => reference = Some(versions),
                Some(first) => assert_eq!(
                    &versions, first,
                    "round {round}, --jobs {jobs}: data versions differ from the first build's"
                ),
            }
        }
    }
}
