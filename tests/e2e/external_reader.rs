//! The committed Parquet files are plain Parquet: an independent engine
//! (pyarrow, installed from PyPI by `.ci/run`) reads them and gets exactly
//! what `cairn query` returns.

use std::process::Command;

use crate::util::Project;

const COMPARE: &str = r#"
import json, math, sys
import pyarrow.parquet as pq

files, expected_path = sys.argv[1].split(","), sys.argv[2]
rows = []
for f in files:
    rows.extend(pq.read_table(f).to_pylist())
expected = json.load(open(expected_path))

def norm(row):
    out = {}
    for k, v in row.items():
        if isinstance(v, float):
            out[k] = round(v, 9)
        elif v is None:
            out[k] = None
        else:
            out[k] = str(v)
    return out

key = lambda r: json.dumps(r, sort_keys=True)
got = sorted((norm(r) for r in rows), key=key)
want = sorted((norm(r) for r in expected), key=key)
if got != want:
    print("pyarrow rows:", got[:3], "...", len(got))
    print("cairn rows:  ", want[:3], "...", len(want))
    sys.exit(1)
print(f"ok {len(got)} rows")
"#;

#[test]
fn pyarrow_reads_committed_files_and_agrees_with_cairn_query() {
    let p = Project::example();
    p.materialize(&[]);
    for asset in ["customers", "orders", "monthly_revenue"] {
        let show = p.json(&["show", asset, "--format", "json"], 0);
        let files: Vec<String> = show["current"]["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                p.path("warehouse")
                    .join(f["path"].as_str().unwrap())
                    .display()
                    .to_string()
            })
            .collect();
        assert!(!files.is_empty());
        let run = p.run(&[
            "query",
            "--format",
            "json",
            &format!("select * from {asset}"),
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let expected = p.path(&format!("{asset}.expected.json"));
        std::fs::write(&expected, &run.stdout).unwrap();

        let out = Command::new("python3")
            .arg("-c")
            .arg(COMPARE)
            .arg(files.join(","))
            .arg(&expected)
            .output()
            .expect("python3 must be installed (see .ci/run)");
        assert!(
            out.status.success(),
            "{asset}: pyarrow disagrees or is missing (pip install pyarrow)\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok "));
    }
}
