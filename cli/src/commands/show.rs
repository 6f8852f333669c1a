//! `cairn show`: one asset's definition, state, current version (inputs,
//! cost, checks, columns, files, schema), history and SQL, as text or JSON.

use std::io::Write;

use cairn_engine::short_version as short;
use cairn_engine::{AssetDetails, Workspace};

use crate::Failure;
use crate::args::{Format, ShowArgs};
use crate::commands::print_json;
use crate::output::bytes;

/// Runs `cairn show`.
pub(crate) fn run(ws: &Workspace, args: ShowArgs) -> Result<u8, Failure> {
    let d = ws.details(&args.asset)?;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => render_json(&d, &mut out)?,
        Format::Text => render_text(&d, &|path| ws.storage.file_url(path), &mut out)?,
    }
    Ok(0)
}

/// The details as JSON: the engine's [`AssetDetails`] as it serializes.
pub(crate) fn render_json(d: &AssetDetails, out: &mut impl Write) -> Result<(), Failure> {
    print_json(d, out)
}

/// The details as text, one `label value` line per fact; `file_url` turns
/// a file path relative to the storage root into the URL shown.
pub(crate) fn render_text(
    d: &AssetDetails,
    file_url: &dyn Fn(&str) -> String,
    out: &mut impl Write,
) -> std::io::Result<()> {
    writeln!(out, "asset       {}", d.status.name)?;
    writeln!(out, "file        {}", d.file)?;
    if let Some(desc) = &d.description {
        writeln!(out, "description {desc}")?;
    }
    if let Some(owner) = &d.owner {
        writeln!(out, "owner       {owner}")?;
    }
    if !d.tags.is_empty() {
        writeln!(out, "tags        {}", d.tags.join(", "))?;
    }
    let causes: Vec<String> = d.status.causes.iter().map(ToString::to_string).collect();
    let detail = if causes.is_empty() {
        String::new()
    } else {
        format!(" ({})", causes.join("; "))
    };
    writeln!(out, "state       {}{detail}", d.status.state.as_str())?;
    writeln!(out, "code        {}", short(&d.status.code_version))?;
    writeln!(out, "upstream    {}", list_or_dash(&d.upstream))?;
    writeln!(out, "downstream  {}", list_or_dash(&d.downstream))?;
    if let Some(p) = &d.partitioning {
        writeln!(out, "partitioned {p}")?;
    }
    for (i, (up, reading)) in d.reads.iter().enumerate() {
        let label = if i == 0 { "reads" } else { "" };
        let whom = if *up == d.status.name {
            format!("{up} (itself)")
        } else {
            up.clone()
        };
        writeln!(out, "{label:<11} {whom}: {reading}")?;
    }
    if !d.declared_columns.is_empty() {
        writeln!(
            out,
            "columns     {} (declared)",
            d.declared_columns.join(", ")
        )?;
    }
    if let Some(f) = &d.status.last_failure {
        writeln!(
            out,
            "last failure {} (run {}): {}",
            f.at.format("%Y-%m-%d %H:%M:%S"),
            f.run_id,
            f.error.as_deref().unwrap_or("-")
        )?;
    }
    match &d.current {
        None => match &d.status.partitions {
            Some(p) => {
                writeln!(out, "\npartitions  {} ({})", p.total, p.describe())?;
                writeln!(out, "  rows      {}", p.rows)?;
                writeln!(
                    out,
                    "  list them with `cairn status {} --partitions`",
                    d.status.name
                )?;
            }
            None => writeln!(out, "\nnot materialized yet")?,
        },
        Some(m) => {
            let b = &m.body;
            writeln!(
                out,
                "\ncurrent version (materialization {}, run {})",
                m.id, b.run_id
            )?;
            writeln!(
                out,
                "  committed {}",
                b.committed_at.format("%Y-%m-%d %H:%M:%S UTC")
            )?;
            writeln!(
                out,
                "  versions  code {}  input {}  data {}",
                short(&b.code_version),
                short(&b.input_version),
                short(&b.data_version)
            )?;
            writeln!(out, "  rows      {}", b.row_count)?;
            writeln!(
                out,
                "  written   {} in {} ms",
                bytes(b.bytes_written),
                b.wall_ms
            )?;
            writeln!(out, "  read")?;
            for i in &b.inputs {
                let from = i
                    .materialization
                    .map(|m| format!(" (materialization {m})"))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "    {} {} data {}{from}",
                    i.kind.as_str(),
                    i.name,
                    short(&i.data_version)
                )?;
            }
            let m = &b.metrics;
            if let (Some(added), Some(removed)) = (m.rows_added, m.rows_removed) {
                writeln!(
                    out,
                    "  changed   +{added} / -{removed} rows versus the previous version"
                )?;
            }
            writeln!(
                out,
                "  cost      ${:.6}  cpu {:.3}s  read {} in {} requests  written {} in {} requests  peak memory {}",
                m.cost_usd,
                m.cpu_seconds,
                bytes(m.bytes_read),
                m.read_requests,
                bytes(m.bytes_written),
                m.write_requests,
                bytes(m.peak_memory_bytes)
            )?;
            if !b.checks.is_empty() {
                writeln!(out, "  checks")?;
                for c in &b.checks {
                    let verdict = if c.passed {
                        "pass".to_owned()
                    } else {
                        format!(
                            "{} ({} failing rows)",
                            c.severity.to_uppercase(),
                            c.failing_rows
                        )
                    };
                    writeln!(out, "    {:<48} {verdict}", c.name)?;
                }
            }
            if !m.columns.is_empty() {
                writeln!(out, "  columns (nulls, min .. max)")?;
                for c in &m.columns {
                    writeln!(
                        out,
                        "    {:<24} {:>8}  {} .. {}",
                        c.name,
                        c.null_count
                            .map(|n| n.to_string())
                            .unwrap_or_else(|| "?".to_owned()),
                        c.min.as_deref().unwrap_or("-"),
                        c.max.as_deref().unwrap_or("-")
                    )?;
                }
            }
            writeln!(out, "  files")?;
            for f in &b.files {
                writeln!(
                    out,
                    "    {}  {} rows  {}",
                    file_url(&f.path),
                    f.row_count,
                    bytes(f.size_bytes)
                )?;
            }
            if let Ok(serde_json::Value::Array(fields)) =
                serde_json::from_str::<serde_json::Value>(&b.schema_json)
            {
                writeln!(out, "  schema")?;
                for f in fields {
                    let null = if f["nullable"].as_bool().unwrap_or(true) {
                        ""
                    } else {
                        " not null"
                    };
                    writeln!(
                        out,
                        "    {} {}{null}",
                        f["name"].as_str().unwrap_or("?"),
                        f["type"].as_str().unwrap_or("?")
                    )?;
                }
            }
        }
    }
    if !d.history.is_empty() {
        writeln!(out, "\nhistory (newest first)")?;
        let key_width = d
            .history
            .iter()
            .map(|h| h.partition.len())
            .max()
            .unwrap_or(0);
        for h in &d.history {
            writeln!(
                out,
                "  {}  run {}{}  {:>8} rows  data {}  {} ms",
                h.committed_at.format("%Y-%m-%d %H:%M:%S"),
                h.run_id,
                if key_width == 0 {
                    String::new()
                } else {
                    format!(
                        "  {:<width$}",
                        format!("[{}]", h.partition),
                        width = key_width + 2
                    )
                },
                h.row_count,
                short(&h.data_version),
                h.wall_ms
            )?;
        }
    }
    writeln!(out, "\nsql ({})\n{}", d.file, d.sql.trim_end())
}

fn list_or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(", ")
    }
}
