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

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use cairn_engine::AssetDetails;

    use super::render_text;
    use crate::commands::testing::{open, redact, rendered, shop};

    /// What a run measures varies from run to run (wall and CPU time,
    /// memory, the cost computed from them): fixed here.
    fn measured_fixed(d: &mut AssetDetails) {
        if let Some(m) = &mut d.current {
            m.body.wall_ms = 35;
            m.body.metrics.cpu_seconds = 0.012;
            m.body.metrics.datafusion_seconds = 0.01;
            m.body.metrics.peak_memory_bytes = 1_048_576;
            m.body.metrics.cost_usd = 0.000_004;
        }
        for h in &mut d.history {
            h.wall_ms = 35;
        }
    }

    fn show(asset: &str) -> String {
        let dir = shop();
        let ws = open(dir.path());
        let mut d = ws.details(asset).unwrap_or_else(|e| panic!("{e}"));
        measured_fixed(&mut d);
        let text = rendered(|out| render_text(&d, &|path| ws.storage.file_url(path), out));
        redact(&text, dir.path())
    }

    /// A stale unpartitioned asset with checks: its current version with
    /// inputs, cost, checks, column statistics, files and schema.
    #[test]
    fn an_asset_with_a_current_version() {
        expect![[r#"
            asset       regions
            file        assets/regions.sql
            description Amount per region over all days.
            owner       finance
            state       stale (code changed; source sales changed)
            code        dd5ee57c5d17
            upstream    sales
            downstream  big_regions, top, total
            reads       sales: every partition

            current version (materialization 4, run <run>)
              committed <time> UTC
              versions  code 0c071de92d3f  input 9cc44c0bfbd8  data 1983f30541e5
              rows      2
              written   1.0 KiB in 35 ms
              read
                source sales data c331be908186
                source sales data 9d3629ed1901
                source sales data ac4fffc566f0
              cost      $0.000004  cpu 0.012s  read 5.3 KiB in 13 requests  written 1.0 KiB in 1 requests  peak memory 1.0 MiB
              checks
                unique(region)                                   pass
                row_count(3, 10)                                 WARN (1 failing rows)
              columns (nulls, min .. max)
                region                          0  eu .. us
                amount                          0  165 .. 380
                sales                           0  2 .. 2
              files
                file://<dir>/warehouse/regions/<run>-00000.parquet  2 rows  1.0 KiB
              schema
                region Utf8
                amount Int64
                sales Int64 not null

            history (newest first)
              <time>  run <run>         2 rows  data 1983f30541e5  35 ms

            sql (assets/regions.sql)
            --- description = "Amount per region over all days."
            --- owner = "finance"
            --- checks = ["unique(region)", { check = "row_count(3, 10)", severity = "warn" }]

            select region, sum(amount) as amount, count(*) as sales
            from sales
            where amount > 0
            group by region
            order by region
        "#]]
        .assert_eq(&show("regions"));
    }

    /// A partitioned asset: partition counts instead of one current
    /// version, history by partition.
    #[test]
    fn a_partitioned_asset() {
        expect![[r#"
            asset       daily
            file        assets/daily.sql
            description Sales and amount per day.
            owner       analytics
            tags        daily
            state       stale (source sales changed; never materialized)
            code        1dbf9b27a8a8
            upstream    sales
            downstream  running
            partitioned daily `date` from 2024-01-01 to 2024-01-03 (UTC)
            reads       sales: the same partition

            partitions  3 (1 fresh, 1 stale: source sales changed, 1 missing)
              rows      2
              list them with `cairn status daily --partitions`

            history (newest first)
              <time>  run <run>  [2024-01-02]         1 rows  data 54b60990b7d4  35 ms
              <time>  run <run>  [2024-01-01]         1 rows  data cd8ffc50e749  35 ms

            sql (assets/daily.sql)
            --- description = "Sales and amount per day."
            --- owner = "analytics"
            --- tags = ["daily"]
            --- checks = ["not_null(day)"]
            --- [partitions]
            --- type = "daily"
            --- start = "2024-01-01"
            --- end = "2024-01-03"

            select {{start_date}} as day, count(*) as sales, coalesce(sum(amount), 0) as amount
            from sales
        "#]]
        .assert_eq(&show("daily"));
    }

    /// An asset whose only attempt failed its checks.
    #[test]
    fn an_asset_never_committed() {
        expect![[r#"
            asset       big_regions
            file        assets/big_regions.sql
            state       failed (never materialized; upstream regions is stale)
            code        d73e9399cee3
            upstream    regions
            downstream  -
            last failure <time> (run <run>): assets/big_regions.sql: checks failed, output not committed: expression(amount < 100) (2 failing rows)

            not materialized yet

            sql (assets/big_regions.sql)
            --- checks = ["expression(amount < 100)"]
            select region, amount from regions where amount > 50
        "#]]
        .assert_eq(&show("big_regions"));
    }
}
