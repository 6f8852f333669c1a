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
    let mut out = std::io::stdout().lock();
    if args.log {
        let since = since(args.since.as_deref())?;
        let entries = ws
            .catalog
            .audit_log(since, args.who.as_deref())
            .map_err(|e| Failure::Runtime(e.to_string()))?;
        match args.format {
            Format::Json => render_log_json(&entries, &mut out)?,
            Format::Text => render_log_text(&entries, &mut out)?,
        }
        return Ok(0);
    }
    let asset = args.asset.unwrap_or_default();
    let node = ws.provenance(&asset, &args.partition, args.version)?;
    match args.format {
        Format::Json => render_json(&node, &mut out)?,
        Format::Text => render_text(&node, &mut out)?,
    }
    Ok(0)
}

/// The provenance as JSON: the engine's [`Provenance`] as it serializes.
pub(crate) fn render_json(node: &Provenance, out: &mut impl Write) -> Result<(), Failure> {
    print_json(node, out)
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
            "{indent}{} {}{part}: data {}",
            n.kind,
            n.name,
            short(&n.data_version)
        )?,
    }
    for i in &n.inputs {
        render_node(i, &format!("{indent}  "), out)?;
    }
    Ok(())
}

/// The audit log as JSON: the catalog's [`AuditEntry`]s as they serialize
/// (with each definition's full state in `details`).
pub(crate) fn render_log_json(entries: &[AuditEntry], out: &mut impl Write) -> Result<(), Failure> {
    print_json(&entries, out)
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

    use super::{render_log_text, render_text};
    use crate::commands::testing::{open, redact, rendered, shop};

    /// Who ran it, and where, depend on the machine: fixed here.
    fn machine_fixed(n: &mut Provenance) {
        if let Some(r) = &mut n.run {
            r.user = "ana".to_owned();
            r.host = "build-7".to_owned();
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
            asset total: materialization 7, data b305e8d09572, 1 rows
                run <run> by ana on build-7 at <time> (cli): cairn materialize
                code ba1ae3a29c1b  input ee0a40fa16bf
                file total/<run>-00000.parquet
              asset regions: materialization 4, data 1983f30541e5, 2 rows
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
            asset running [2024-01-02]: materialization 6, data 4a7e16e7d86a, 1 rows
                run <run> by ana on build-7 at <time> (cli): cairn materialize
                code 528923e557fd  input 0da77eeb5b07
                file running/date=2024-01-02/<run>-00000.parquet
              asset daily [2024-01-02]: materialization 3, data 54b60990b7d4, 1 rows
                  run <run> by ana on build-7 at <time> (cli): cairn materialize
                  code 1dbf9b27a8a8  input 70c9981f5249
                  file daily/date=2024-01-02/<run>-00000.parquet
                source sales [2024-01-02]: data 9d3629ed1901
              asset running [2024-01-01]: materialization 5, data 1ad84fe80e4d, 1 rows
                  run <run> by ana on build-7 at <time> (cli): cairn materialize
                  code 528923e557fd  input aec9a59d208e
                  file running/date=2024-01-01/<run>-00000.parquet
                asset daily [2024-01-01]: materialization 2, data cd8ffc50e749, 1 rows
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
        let mut entries = ws
            .catalog
            .audit_log(None, None)
            .unwrap_or_else(|e| panic!("{e}"));
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
}
