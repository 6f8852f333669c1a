//! `cairn audit`: the provenance of a committed version (run, code, exact
//! upstream versions, back to the sources), or with `--log` the audit log
//! of state-changing actions.

use std::io::Write;

use cairn_catalog::AuditEntry;
use cairn_engine::short_version as short;
use cairn_engine::{Provenance, Workspace};

use crate::Failure;
use crate::args::{AuditArgs, Format};
use crate::commands::{print_json, since};

/// Runs `cairn audit`.
pub(crate) fn run(ws: &Workspace, args: AuditArgs) -> Result<u8, Failure> {
    let mut out = crate::output::stdout();
    if args.log {
        let since = since(args.since.as_deref())?;
        let entries = ws.audit_log(since, args.who.as_deref())?;
        match args.format {
            Format::Json => render_log_json(&entries, &mut out)?,
            Format::Text => render_log_text(&entries, &mut out)?,
        }
        out.flush()?;
        return Ok(0);
    }
    let asset = args.asset.unwrap_or_default();
    let node = ws.provenance(&asset, &args.partition, args.version)?;
    match args.format {
        Format::Json => render_json(&node, &mut out)?,
        Format::Text => render_text(&node, &mut out)?,
    }
    out.flush()?;
    Ok(0)
}

/// The provenance as JSON: the CLI's [`json::Provenance`] tree, built
/// from the engine's [`Provenance`].
pub(crate) fn render_json(node: &Provenance, out: &mut impl Write) -> Result<(), Failure> {
    print_json(&json::Provenance::from(node), out)
}

/// The provenance as an indented tree: each version with its run, code
/// and input versions and files, then what it read, one level deeper.
pub(crate) fn render_text(node: &Provenance, out: &mut impl Write) -> std::io::Result<()> {
    render_node(node, "", out)
}

fn render_node(n: &Provenance, indent: &str, out: &mut impl Write) -> std::io::Result<()> {
    let part = if n.partition.is_empty() {
        String::new()
    } else {
        format!(" [{}]", n.partition)
    };
    match n
        .materialization
        .filter(|_| n.run.is_some() || n.code_version.is_some())
    {
        Some(id) => {
            writeln!(
                out,
                "{indent}{} {}{part}: materialization {id}, data {}, {} rows{}",
                n.kind,
                n.name,
                short(&n.data_version),
                n.rows.unwrap_or(0),
                if n.expired {
                    " (files removed by retention)"
                } else {
                    ""
                }
            )?;
            if let Some(r) = &n.run {
                writeln!(
                    out,
                    "{indent}    run {} by {} on {} at {} ({}): {}",
                    r.id,
                    r.user,
                    r.host,
                    r.started_at.format("%Y-%m-%d %H:%M:%S"),
                    r.trigger,
                    r.command
                )?;
            }
            if let (Some(c), Some(i)) = (&n.code_version, &n.input_version) {
                writeln!(out, "{indent}    code {}  input {}", short(c), short(i))?;
            }
            for f in &n.files {
                writeln!(out, "{indent}    file {f}")?;
            }
        }
        None => writeln!(
            out,
            "{indent}{} {}{part}: data {}{}",
            n.kind,
            n.name,
            short(&n.data_version),
            if n.shown_above {
                " (its provenance: above)"
            } else {
                ""
            }
        )?,
    }
    for i in &n.inputs {
        render_node(i, &format!("{indent}  "), out)?;
    }
    Ok(())
}

/// The audit log as JSON: an array of the CLI's [`json::AuditEntry`],
/// built from the catalog's [`AuditEntry`]s (with each definition's full
/// state in `details`).
pub(crate) fn render_log_json(entries: &[AuditEntry], out: &mut impl Write) -> Result<(), Failure> {
    let entries: Vec<json::AuditEntry<'_>> = entries.iter().map(json::AuditEntry::from).collect();
    print_json(&entries, out)
}

/// The wire shapes of `cairn audit --format json`: the provenance tree,
/// and the entries of `--log`.
mod json {
    use chrono::{DateTime, Utc};
    use serde::Serialize;

    /// One version in a provenance tree, with what it read.
    #[derive(Serialize)]
    pub(super) struct Provenance<'a> {
        /// `asset` or `source`.
        kind: &'a str,
        name: &'a str,
        partition: &'a str,
        data_version: &'a str,
        materialization: Option<i64>,
        run: Option<Run<'a>>,
        code_version: Option<&'a str>,
        input_version: Option<&'a str>,
        committed_at: Option<&'a DateTime<Utc>>,
        rows: Option<u64>,
        files: &'a [String],
        expired: bool,
        inputs: Vec<Provenance<'a>>,
        /// Its inputs are where this version first appears in the tree.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        shown_above: bool,
    }

    impl<'a> From<&'a cairn_engine::Provenance> for Provenance<'a> {
        fn from(n: &'a cairn_engine::Provenance) -> Self {
            Provenance {
                kind: n.kind,
                name: &n.name,
                partition: &n.partition,
                data_version: &n.data_version,
                materialization: n.materialization.map(|m| m.0),
                run: n.run.as_ref().map(Run::from),
                code_version: n.code_version.as_deref(),
                input_version: n.input_version.as_deref(),
                committed_at: n.committed_at.as_ref(),
                rows: n.rows,
                files: &n.files,
                expired: n.expired,
                inputs: n.inputs.iter().map(Provenance::from).collect(),
                shown_above: n.shown_above,
            }
        }
    }

    /// The run that produced a version: who, where, when and how.
    #[derive(Serialize)]
    struct Run<'a> {
        id: &'a str,
        user: &'a str,
        host: &'a str,
        pid: u32,
        command: &'a str,
        trigger: &'a str,
        started_at: &'a DateTime<Utc>,
        finished_at: Option<&'a DateTime<Utc>>,
        status: RunStatus,
        error: Option<&'a str>,
        backfill_id: Option<&'a str>,
    }

    impl<'a> From<&'a cairn_catalog::RunRecord> for Run<'a> {
        fn from(r: &'a cairn_catalog::RunRecord) -> Self {
            Run {
                id: &r.id.0,
                user: &r.user,
                host: &r.host,
                pid: r.pid,
                command: &r.command,
                trigger: &r.trigger,
                started_at: &r.started_at,
                finished_at: r.finished_at.as_ref(),
                status: r.status.into(),
                error: r.error.as_deref(),
                backfill_id: r.backfill_id.as_ref().map(|b| b.0.as_str()),
            }
        }
    }

    /// How a run ended, or that it has not.
    #[derive(Serialize)]
    #[serde(rename_all = "snake_case")]
    pub(super) enum RunStatus {
        Queued,
        Running,
        Succeeded,
        Failed,
        Crashed,
        Cancelled,
    }

    impl From<cairn_catalog::RunStatus> for RunStatus {
        fn from(s: cairn_catalog::RunStatus) -> Self {
            use cairn_catalog::RunStatus as C;
            match s {
                C::Queued => RunStatus::Queued,
                C::Running => RunStatus::Running,
                C::Succeeded => RunStatus::Succeeded,
                C::Failed => RunStatus::Failed,
                C::Crashed => RunStatus::Crashed,
                C::Cancelled => RunStatus::Cancelled,
            }
        }
    }

    /// One entry of the audit log.
    #[derive(Serialize)]
    pub(super) struct AuditEntry<'a> {
        id: i64,
        at: &'a DateTime<Utc>,
        principal: &'a str,
        host: &'a str,
        git_commit: Option<&'a str>,
        action: &'a str,
        target: &'a str,
        /// The action's details: a JSON object, as text.
        details: &'a str,
    }

    impl<'a> From<&'a cairn_catalog::AuditEntry> for AuditEntry<'a> {
        fn from(e: &'a cairn_catalog::AuditEntry) -> Self {
            let entry = &e.entry;
            AuditEntry {
                id: e.id,
                at: &entry.at,
                principal: &entry.principal,
                host: &entry.host,
                git_commit: entry.git_commit.as_deref(),
                action: &entry.action,
                target: &entry.target,
                details: &entry.details,
            }
        }
    }
}

/// The audit log as text, one line per entry; the definition state in
/// `details` is left to the JSON output, the text shows the change.
pub(crate) fn render_log_text(entries: &[AuditEntry], out: &mut impl Write) -> std::io::Result<()> {
    for e in entries {
        let e2 = &e.entry;
        let details = match serde_json::from_str::<serde_json::Value>(&e2.details) {
            Ok(serde_json::Value::Object(mut map)) => {
                map.remove("state");
                serde_json::Value::Object(map).to_string()
            }
            _ => e2.details.clone(),
        };
        writeln!(
            out,
            "{:>5}  {}  {:<10} {:<12} {:<16} {}  (host {}{})",
            e.id,
            e2.at.format("%Y-%m-%d %H:%M:%S"),
            e2.principal,
            e2.action,
            e2.target,
            details,
            e2.host,
            e2.git_commit
                .as_deref()
                .map(|c| format!(", git {c}"))
                .unwrap_or_default()
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use cairn_engine::Provenance;

    use super::{render_json, render_log_json, render_log_text, render_text};
    use crate::commands::testing::{json, open, redact, rendered, shop};

    /// Who ran it, and where, depend on the machine: fixed here (and the
    /// process id, which only the JSON shows).
    fn machine_fixed(n: &mut Provenance) {
        if let Some(r) = &mut n.run {
            r.user = "ana".to_owned();
            r.host = "build-7".to_owned();
            r.pid = 4242;
        }
        n.inputs.iter_mut().for_each(machine_fixed);
    }

    /// `total`, back through `regions` to the partitions of source `sales`.
    #[test]
    fn provenance_back_to_the_sources() {
        let dir = shop();
        let ws = open(dir.path());
        let mut node = ws
            .provenance("total", "", None)
            .unwrap_or_else(|e| panic!("{e}"));
        machine_fixed(&mut node);
        expect![[r#"
            asset total: materialization 7, data e59068f06d3d, 1 rows
                run <run> by ana on build-7 at <time> (cli): cairn materialize
                code ba1ae3a29c1b  input d8fcffcb9610
                file total/<run>-00000.parquet
              asset regions: materialization 4, data 4f10717f1f0a, 2 rows
                  run <run> by ana on build-7 at <time> (cli): cairn materialize
                  code 0c071de92d3f  input 9cc44c0bfbd8
                  file regions/<run>-00000.parquet
                source sales [2024-01-01]: data c331be908186
                source sales [2024-01-02]: data 9d3629ed1901
                source sales [2024-01-03]: data ac4fffc566f0
        "#]]
        .assert_eq(&redact(
            &rendered(|out| render_text(&node, out)),
            dir.path(),
        ));
    }

    /// One partition of an asset reading its own earlier partitions.
    #[test]
    fn provenance_of_a_partition() {
        let dir = shop();
        let ws = open(dir.path());
        let mut node = ws
            .provenance("running", "2024-01-02", None)
            .unwrap_or_else(|e| panic!("{e}"));
        machine_fixed(&mut node);
        expect![[r#"
            asset running [2024-01-02]: materialization 6, data b696ec110ae3, 1 rows
                run <run> by ana on build-7 at <time> (cli): cairn materialize
                code 528923e557fd  input 45fb88750c92
                file running/date=2024-01-02/<run>-00000.parquet
              asset daily [2024-01-02]: materialization 3, data 15b1d1c54727, 1 rows
                  run <run> by ana on build-7 at <time> (cli): cairn materialize
                  code 1dbf9b27a8a8  input 70c9981f5249
                  file daily/date=2024-01-02/<run>-00000.parquet
                source sales [2024-01-02]: data 9d3629ed1901
              asset running [2024-01-01]: materialization 5, data 88aab2591cd2, 1 rows
                  run <run> by ana on build-7 at <time> (cli): cairn materialize
                  code 528923e557fd  input 0f17ac05d0a8
                  file running/date=2024-01-01/<run>-00000.parquet
                asset daily [2024-01-01]: materialization 2, data 8cf34600038d, 1 rows
                    run <run> by ana on build-7 at <time> (cli): cairn materialize
                    code 1dbf9b27a8a8  input 74d2c28b6737
                    file daily/date=2024-01-01/<run>-00000.parquet
                  source sales [2024-01-01]: data c331be908186
        "#]]
        .assert_eq(&redact(
            &rendered(|out| render_text(&node, out)),
            dir.path(),
        ));
    }

    #[test]
    fn the_log() {
        let dir = shop();
        let ws = open(dir.path());
        let mut entries = ws.audit_log(None, None).unwrap_or_else(|e| panic!("{e}"));
        for e in &mut entries {
            e.entry.principal = "ana".to_owned();
            e.entry.host = "build-7".to_owned();
            e.entry.git_commit = Some("4f608c9".to_owned());
        }
        // The ids are right-aligned: a first line of its own keeps
        // expect-test from trimming their indentation.
        let text = redact(&rendered(|out| render_log_text(&entries, out)), dir.path());
        expect![[r#"
            stdout:
                1  <time>  ana        config_changed asset:big_regions, asset:daily, asset:named, asset:regions, asset:running, asset:total, cairn.toml {"added":["asset:big_regions","asset:daily","asset:named","asset:regions","asset:running","asset:total","cairn.toml"],"changed":[],"removed":[]}  (host build-7, git 4f608c9)
                2  <time>  ana        materialize  *                {"backfill_id":null,"command":"cairn materialize","failed":1,"materialized":7,"run_id":"<run>","skipped":0}  (host build-7, git 4f608c9)
        "#]]
        .assert_eq(&format!("stdout:\n{text}"));
    }

    /// The JSON of a provenance tree: each version with its run, versions
    /// and files, then what it read, back to the source partitions.
    #[test]
    fn json_of_provenance() {
        let dir = shop();
        let ws = open(dir.path());
        let mut node = ws
            .provenance("total", "", None)
            .unwrap_or_else(|e| panic!("{e}"));
        machine_fixed(&mut node);
        expect![[r#"
            {
              "kind": "asset",
              "name": "total",
              "partition": "",
              "data_version": "e59068f06d3d773c4aff9a71b1011ea2f283653349a212bf8409ab2159b5612c",
              "materialization": 7,
              "run": {
                "id": "<run>",
                "user": "ana",
                "host": "build-7",
                "pid": 4242,
                "command": "cairn materialize",
                "trigger": "cli",
                "started_at": "<time>",
                "finished_at": "<time>",
                "status": "failed",
                "error": "failed: big_regions",
                "backfill_id": null
              },
              "code_version": "ba1ae3a29c1bb1d3b72978f4b7a8249d8872911814f0f868a949e233bc6885cc",
              "input_version": "d8fcffcb9610be0095ace011f7931766f44b2381cd880742b6dbcdb002e64c97",
              "committed_at": "<time>",
              "rows": 1,
              "files": [
                "total/<run>-00000.parquet"
              ],
              "expired": false,
              "inputs": [
                {
                  "kind": "asset",
                  "name": "regions",
                  "partition": "",
                  "data_version": "4f10717f1f0a8d31159b030b1916e5c4aac8a9496572b208b7de35be74a21c1d",
                  "materialization": 4,
                  "run": {
                    "id": "<run>",
                    "user": "ana",
                    "host": "build-7",
                    "pid": 4242,
                    "command": "cairn materialize",
                    "trigger": "cli",
                    "started_at": "<time>",
                    "finished_at": "<time>",
                    "status": "failed",
                    "error": "failed: big_regions",
                    "backfill_id": null
                  },
                  "code_version": "0c071de92d3f15c5406d9c38cd960cf270f556019e581510cece8a2744a4602c",
                  "input_version": "9cc44c0bfbd859dd427f9857ca1fd07a6a60b2c283282f324daa74c1e4347d03",
                  "committed_at": "<time>",
                  "rows": 2,
                  "files": [
                    "regions/<run>-00000.parquet"
                  ],
                  "expired": false,
                  "inputs": [
                    {
                      "kind": "source",
                      "name": "sales",
                      "partition": "2024-01-01",
                      "data_version": "c331be908186deeaa098161fe23f42a7517461aeca894385ea6e22e0efc06ad1",
                      "materialization": null,
                      "run": null,
                      "code_version": null,
                      "input_version": null,
                      "committed_at": null,
                      "rows": null,
                      "files": [],
                      "expired": false,
                      "inputs": []
                    },
                    {
                      "kind": "source",
                      "name": "sales",
                      "partition": "2024-01-02",
                      "data_version": "9d3629ed1901f2bea58e9c445c86a7aab4887a14af84892f357f239f4cc6b5dd",
                      "materialization": null,
                      "run": null,
                      "code_version": null,
                      "input_version": null,
                      "committed_at": null,
                      "rows": null,
                      "files": [],
                      "expired": false,
                      "inputs": []
                    },
                    {
                      "kind": "source",
                      "name": "sales",
                      "partition": "2024-01-03",
                      "data_version": "ac4fffc566f05320b69507c93b1283aa713902a2723391d62365f43151a4b86c",
                      "materialization": null,
                      "run": null,
                      "code_version": null,
                      "input_version": null,
                      "committed_at": null,
                      "rows": null,
                      "files": [],
                      "expired": false,
                      "inputs": []
                    }
                  ]
                }
              ]
            }
        "#]].assert_eq(&redact(
            &json(|out| render_json(&node, out)),
            dir.path(),
        ));
    }

    /// The JSON of the log: each entry with its details as a JSON text.
    #[test]
    fn json_of_the_log() {
        let dir = shop();
        let ws = open(dir.path());
        let mut entries = ws.audit_log(None, None).unwrap_or_else(|e| panic!("{e}"));
        for e in &mut entries {
            e.entry.principal = "ana".to_owned();
            e.entry.host = "build-7".to_owned();
            e.entry.git_commit = None;
        }
        expect![[r#"
            [
              {
                "id": 1,
                "at": "<time>",
                "principal": "ana",
                "host": "build-7",
                "git_commit": null,
                "action": "config_changed",
                "target": "asset:big_regions, asset:daily, asset:named, asset:regions, asset:running, asset:total, cairn.toml",
                "details": "{\"added\":[\"asset:big_regions\",\"asset:daily\",\"asset:named\",\"asset:regions\",\"asset:running\",\"asset:total\",\"cairn.toml\"],\"changed\":[],\"removed\":[],\"state\":{\"asset:big_regions\":\"d73e9399cee32d9e014d8f10845fc7e5ebdc8be2a065bf0164d4eec8b2fb9ccf\",\"asset:daily\":\"1dbf9b27a8a8c92381ab5c3c53075af448c938f44359d3feaad482465b6edd87\",\"asset:named\":\"04f47f2ceec21a2016a50dfbd53e116f76644a5d14ce0c754ae05ee2d61f0c85\",\"asset:regions\":\"0c071de92d3f15c5406d9c38cd960cf270f556019e581510cece8a2744a4602c\",\"asset:running\":\"528923e557fde20a0144e0c1fe0e391e2d434ca6933fcb00c5d212ac5859ac56\",\"asset:total\":\"ba1ae3a29c1bb1d3b72978f4b7a8249d8872911814f0f868a949e233bc6885cc\",\"cairn.toml\":\"3561eb9b6f567c59c55adcbf98d286672342a37376e1272290532618d149a005\"}}"
              },
              {
                "id": 2,
                "at": "<time>",
                "principal": "ana",
                "host": "build-7",
                "git_commit": null,
                "action": "materialize",
                "target": "*",
                "details": "{\"backfill_id\":null,\"command\":\"cairn materialize\",\"failed\":1,\"materialized\":7,\"run_id\":\"<run>\",\"skipped\":0}"
              }
            ]
        "#]].assert_eq(&redact(
            &json(|out| render_log_json(&entries, out)),
            dir.path(),
        ));
    }

    /// Every run status, as the JSON gives it.
    #[test]
    fn every_run_status() {
        use cairn_catalog::RunStatus as C;
        let names: Vec<String> = [C::Running, C::Succeeded, C::Failed, C::Crashed]
            .map(|s| serde_json::to_string(&super::json::RunStatus::from(s)).unwrap_or_default())
            .into();
        expect![[r#"
            "running"
            "succeeded"
            "failed"
            "crashed""#]]
        .assert_eq(&names.join("\n"));
    }
}
