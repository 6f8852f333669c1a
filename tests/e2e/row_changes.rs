//! Rows added and removed between two versions are a true multiset
//! difference, checked against a reference computed independently: the
//! committed Parquet files read with pyarrow and their rows subtracted with
//! Python's `Counter`.

use crate::util::Project;

/// The two CSV states of `data/raw.csv` an asset is built from in turn.
fn two_versions(sql: &str, before: &str, after: &str) -> Project {
    let p = Project::with_files(&[
        ("cairn.toml", "[sources.raw]\npath = \"data/raw.csv\"\n"),
        ("data/raw.csv", before),
        ("assets/t.sql", sql),
    ]);
    p.materialize(&[]);
    p.write("data/raw.csv", after);
    p.materialize(&[]);
    p
}

/// `(added, removed)`.
type Counts = (i64, i64);

/// The counts of one version: its partition, as recorded, as the
/// reference computes them.
struct Compared {
    partition: String,
    recorded: Counts,
    reference: Counts,
}

/// `(rows_added, rows_removed)` recorded for every version of `asset` that
/// has a previous one in its partition, and the reference: the rows of the
/// two versions' files subtracted as multisets in Python.
fn recorded_and_reference(p: &Project, asset: &str) -> Vec<Compared> {
    let rows = p.query_json(&format!(
        "select partition, run_id, rows_added, rows_removed from cairn.materializations \
         where asset = '{asset}' order by partition, id"
    ));
    let rows = rows.as_array().unwrap();
    let mut out = Vec::new();
    for pair in rows.windows(2) {
        let (prev, cur) = (&pair[0], &pair[1]);
        if prev["partition"] != cur["partition"] {
            continue;
        }
        let recorded = (
            cur["rows_added"].as_i64().expect("rows_added recorded"),
            cur["rows_removed"].as_i64().expect("rows_removed recorded"),
        );
        let files = |run: &serde_json::Value| {
            let run = run.as_str().unwrap();
            let mut found = Vec::new();
            for f in p.warehouse_files() {
                let name = f.rsplit('/').next().unwrap();
                if f.starts_with(&format!("{asset}/")) && name.starts_with(&format!("{run}-")) {
                    // Only this partition's folder.
                    let key = cur["partition"].as_str().unwrap();
                    if key.is_empty() || f.contains(&format!("={key}/")) {
                        found.push(p.path("warehouse").join(&f).display().to_string());
                    }
                }
            }
            assert!(!found.is_empty(), "no files of run {run}");
            found.join(",")
        };
        out.push(Compared {
            partition: cur["partition"].as_str().unwrap().to_owned(),
            recorded,
            reference: python_reference(&files(&prev["run_id"]), &files(&cur["run_id"])),
        });
    }
    assert!(!out.is_empty(), "no version of {asset} has a previous one");
    out
}

/// `(added, removed)` between the rows of two comma-separated file lists.
/// Rows compare as SQL groups them: `-0.0` equals `0.0` (Python already
/// agrees), NaN equals NaN (Python does not: made one value here).
fn python_reference(previous: &str, current: &str) -> Counts {
    let script = r#"
import sys, math
from collections import Counter
import pyarrow.parquet as pq

def rows(files):
    out = Counter()
    for f in files.split(","):
        for r in pq.read_table(f).to_pylist():
            out[tuple(("NaN" if isinstance(v, float) and math.isnan(v) else v) for v in r.values())] += 1
    return out

before, after = rows(sys.argv[1]), rows(sys.argv[2])
print(sum((after - before).values()), sum((before - after).values()))
"#;
    let text = crate::util::python(script, [previous, current]);
    let mut it = text.split_whitespace().map(|n| n.parse::<i64>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

/// Every version's recorded counts equal the reference and `expected`.
fn check(p: &Project, asset: &str, expected: &[(&str, Counts)]) {
    let got = recorded_and_reference(p, asset);
    for c in &got {
        assert_eq!(
            c.recorded, c.reference,
            "{asset} [{}]: recorded vs pyarrow reference",
            c.partition
        );
    }
    let got: Vec<(&str, Counts)> = got
        .iter()
        .map(|c| (c.partition.as_str(), c.recorded))
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn duplicates_on_either_side_count_one_copy_per_match() {
    // The issue's reproduction: a x3, b -> a, b x2 (EXCEPT ALL said 0, 0).
    let p = two_versions(
        "select k, v from raw",
        "k,v\na,1\na,1\na,1\nb,2\n",
        "k,v\na,1\nb,2\nb,2\n",
    );
    check(&p, "t", &[("", (1, 2))]);
    let p = two_versions(
        "select k, v from raw",
        "k,v\na,1\nb,2\nb,2\n",
        "k,v\na,1\na,1\na,1\nb,2\nc,3\n",
    );
    check(&p, "t", &[("", (3, 1))]);
}

#[test]
fn all_rows_equal() {
    let p = two_versions(
        "select k, v from raw",
        "k,v\na,1\na,1\na,1\na,1\na,1\n",
        "k,v\na,1\na,1\na,1\n",
    );
    check(&p, "t", &[("", (0, 2))]);
}

#[test]
fn nulls_in_every_column() {
    let sql =
        "select cast(k as varchar) as k, cast(v as bigint) as v, cast(x as double) as x from raw";
    let p = two_versions(
        sql,
        "k,v,x\n,,\n,,\na,,\n,1,\n,,2.5\n",
        "k,v,x\n,,\na,,\na,,\n,,2.5\n,,2.5\n",
    );
    check(&p, "t", &[("", (2, 2))]);
}

#[test]
fn an_empty_previous_or_new_version() {
    let sql = "select cast(k as varchar) as k, cast(v as bigint) as v from raw where v > 0";
    let p = two_versions(sql, "k,v\na,0\nb,0\n", "k,v\na,1\na,1\nb,2\n");
    check(&p, "t", &[("", (3, 0))]);
    let p = two_versions(sql, "k,v\na,1\na,1\nb,2\n", "k,v\na,0\nb,0\n");
    check(&p, "t", &[("", (0, 3))]);
}

#[test]
fn float_zeros_and_nans_compare_as_sql_groups_them() {
    let sql = "select cast(k as varchar) as k, cast(x as double) as x from raw";
    let p = two_versions(
        sql,
        "k,x\na,0\na,-0\nb,NaN\nc,1.5\nc,-1.5\n",
        "k,x\na,-0\na,-0\na,0\nb,NaN\nb,NaN\nc,1.5\n",
    );
    // a: {0, 0} -> {0, 0, 0}: +1; b: +1 NaN; c: -1.5 removed.
    check(&p, "t", &[("", (2, 1))]);
}

#[test]
fn each_partition_counts_against_its_own_previous_version() {
    let p = Project::with_files(&[
        ("cairn.toml", "[sources.raw]\npath = \"data/raw.csv\"\n"),
        ("data/raw.csv", "k,v\na,1\na,1\na,1\nb,2\nb,3\n"),
        (
            "assets/t.sql",
            "--- [partitions]\n--- type = \"static\"\n--- values = [\"a\", \"b\"]\n\
             select v from raw where k = {{partition_key}}",
        ),
    ]);
    p.materialize(&[]);
    p.write("data/raw.csv", "k,v\na,1\nb,2\nb,2\nb,3\nb,4\n");
    p.materialize(&[]);
    check(&p, "t", &[("a", (0, 2)), ("b", (2, 0))]);
}
