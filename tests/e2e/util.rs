//! Running the real `cairn` binary on a throw-away copy of a project.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A project copied into a temporary directory.
pub struct Project {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    /// Environment variables every command gets (the S3 tests' AWS_*).
    pub env: Vec<(String, String)>,
}

impl Project {
    /// A fresh copy of the bundled example warehouse (without outputs).
    pub fn example() -> Project {
        Project::example_named("warehouse")
    }

    /// A fresh copy of `examples/NAME` (without outputs).
    pub fn example_named(name: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join(format!("{name}-project"));
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../examples")
                .join(name),
            &root,
        );
        let _ = fs::remove_dir_all(root.join("warehouse"));
        let _ = fs::remove_dir_all(root.join(".cairn"));
        Project {
            _dir: dir,
            root,
            env: Vec::new(),
        }
    }

    /// An empty project with the given files (path, content).
    pub fn with_files(files: &[(&str, &str)]) -> Project {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("p");
        fs::create_dir_all(&root).unwrap();
        let project = Project {
            _dir: dir,
            root,
            env: Vec::new(),
        };
        for (path, content) in files {
            project.write(path, content);
        }
        project
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel)).unwrap()
    }

    /// Replaces `from` by `to` in a project file; panics when absent.
    pub fn edit(&self, rel: &str, from: &str, to: &str) {
        let text = self.read(rel);
        assert!(text.contains(from), "{rel} does not contain {from:?}");
        self.write(rel, &text.replacen(from, to, 1));
    }

    /// `cairn --project ROOT args...`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cairn"));
        cmd.arg("--project").arg(&self.root).args(args);
        cmd.env_remove("CAIRN_TEST_HANG_BEFORE_COMMIT");
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().unwrap())
    }

    /// Runs and parses stdout as JSON, asserting the exit code.
    pub fn json(&self, args: &[&str], code: i32) -> Value {
        let run = self.run(args);
        assert_eq!(
            run.code, code,
            "cairn {args:?}\nstdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        );
        serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", run.stdout))
    }

    /// `cairn query --format json SQL`, which must succeed: its rows.
    pub fn query_json(&self, sql: &str) -> Value {
        self.json(&["query", "--format", "json", sql], 0)
    }

    /// Files under the storage root (relative, sorted).
    pub fn warehouse_files(&self) -> Vec<String> {
        let mut out = Vec::new();
        collect(&self.path("warehouse"), &self.path("warehouse"), &mut out);
        out.sort();
        out
    }

    /// Outcome of each asset in a `materialize --format json` answer.
    pub fn materialize(&self, args: &[&str]) -> (Value, Vec<(String, String)>) {
        let mut full = vec!["materialize", "--format", "json"];
        full.extend_from_slice(args);
        let report = self.json(&full, 0);
        let outcomes = outcomes(&report);
        (report, outcomes)
    }
}

pub fn outcomes(report: &Value) -> Vec<(String, String)> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut outcome = r["outcome"].as_str().unwrap().to_owned();
            if r["early_cutoff"].as_bool() == Some(true) {
                outcome.push_str(" (early cutoff)");
            }
            (r["asset"].as_str().unwrap().to_owned(), outcome)
        })
        .collect()
}

/// Names of the assets with the given outcome.
pub fn with_outcome(outcomes: &[(String, String)], outcome: &str) -> Vec<String> {
    let mut v: Vec<String> = outcomes
        .iter()
        .filter(|(_, o)| o == outcome)
        .map(|(a, _)| a.clone())
        .collect();
    v.sort();
    v
}

/// `asset -> (state, causes as text)` from `status --format json`.
pub fn states(status: &Value) -> std::collections::BTreeMap<String, (String, Vec<String>)> {
    status["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let causes = a["causes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| match c["name"].as_str() {
                    Some(n) => format!("{} {n}", c["cause"].as_str().unwrap()),
                    None => c["cause"].as_str().unwrap().to_owned(),
                })
                .collect();
            (
                a["name"].as_str().unwrap().to_owned(),
                (a["state"].as_str().unwrap().to_owned(), causes),
            )
        })
        .collect()
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            collect(root, &p, out);
        } else {
            out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A finished process.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs `args`, which must be refused: exit code 2, every fragment on
/// stderr, no panic. Returns the run for further checks.
pub fn assert_refused(p: &Project, args: &[&str], fragments: &[&str]) -> Run {
    let run = p.run(args);
    assert_eq!(
        run.code, 2,
        "cairn {args:?}: exit code\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    for fragment in fragments {
        assert!(
            run.stderr.contains(fragment),
            "stderr lacks {fragment:?}:\n{}",
            run.stderr
        );
    }
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run
}

/// `(asset, partition) -> (data version, rows)` of the materialized units
/// of a `materialize --format json` report.
pub fn versions(report: &Value) -> std::collections::BTreeMap<(String, String), (String, u64)> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "materialized")
        .map(|r| {
            (
                (
                    r["asset"].as_str().unwrap().to_owned(),
                    r["partition"].as_str().unwrap().to_owned(),
                ),
                (
                    r["data_version"].as_str().unwrap().to_owned(),
                    r["rows"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

/// Runs `python3 -c script args...` (the Python packages tests/run.sh
/// installs), asserting it succeeds; its standard output.
pub fn python<A: AsRef<std::ffi::OsStr>>(
    script: &str,
    args: impl IntoIterator<Item = A>,
) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 (tests/run.sh installs the packages the tests use)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Asserts that no asset of `p` has a committed version.
pub fn assert_nothing_committed(p: &Project) {
    let s = states(&p.json(&["status", "--format", "json"], 0));
    assert!(
        s.values().all(|(state, _)| state == "never_materialized"),
        "nothing committed: {s:?}"
    );
}

/// `cairn backfill` of daily_sales' first week, as JSON (the example
/// project `daily_sales`).
pub const DAILY_SALES_FIRST_WEEK: [&str; 8] = [
    "backfill",
    "daily_sales",
    "--from",
    "2024-01-01",
    "--to",
    "2024-01-07",
    "--format",
    "json",
];
