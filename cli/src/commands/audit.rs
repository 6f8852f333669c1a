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
