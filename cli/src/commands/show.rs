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
    print(&d, &|path| ws.file_url(path), args.format)
}

/// Prints an asset's details (`cairn show`, locally or through a server);
/// `file_url` gives a stored file's URL.
pub(crate) fn print(
    d: &AssetDetails,
    file_url: &dyn Fn(&str) -> String,
    format: Format,
) -> Result<u8, Failure> {
    let mut out = crate::output::stdout();
    match format {
        Format::Json => render_json(d, &mut out)?,
        Format::Text => render_text(d, file_url, &mut out)?,
    }
    out.flush()?;
    Ok(0)
}

/// The details as JSON: the CLI's [`json::Details`], built from the
/// engine's [`AssetDetails`].
pub(crate) fn render_json(d: &AssetDetails, out: &mut impl Write) -> Result<(), Failure> {
    print_json(&json::Details::from(d), out)
}

/// The wire shape of `cairn show --format json`.
mod json {
    use chrono::{DateTime, Utc};
    use serde::Serialize;

    use cairn_engine::AssetDetails;

    use crate::commands::wire;

    /// Everything `cairn show` knows about an asset.
    #[derive(Serialize)]
    pub(super) struct Details<'a> {
        status: wire::AssetStatus<'a>,
        file: &'a str,
        description: Option<&'a str>,
        owner: Option<&'a str>,
        tags: &'a [String],
        sql: &'a str,
        upstream: &'a [String],
        downstream: &'a [String],
        partitioning: Option<&'a str>,
        /// `[upstream, how it is read]` pairs.
        reads: Vec<(&'a str, &'a str)>,
        declared_columns: &'a [String],
        current: Option<Materialization<'a>>,
        history: Vec<wire::CurrentVersion<'a>>,
        last_attempt: Option<wire::AttemptRecord<'a>>,
    }

    impl<'a> From<&'a AssetDetails> for Details<'a> {
        fn from(d: &'a AssetDetails) -> Self {
            Details {
                status: (&d.status).into(),
                file: &d.file,
                description: d.description.as_deref(),
                owner: d.owner.as_deref(),
                tags: &d.tags,
                sql: &d.sql,
                upstream: &d.upstream,
                downstream: &d.downstream,
                partitioning: d.partitioning.as_deref(),
                reads: d
                    .reads
                    .iter()
                    .map(|(up, how)| (up.as_str(), how.as_str()))
                    .collect(),
                declared_columns: &d.declared_columns,
                current: d.current.as_ref().map(Materialization::from),
                history: d.history.iter().map(wire::CurrentVersion::from).collect(),
                last_attempt: d.last_attempt.as_ref().map(wire::AttemptRecord::from),
            }
        }
    }

    /// A committed version with its inputs, files, metrics and checks.
    #[derive(Serialize)]
    struct Materialization<'a> {
        id: i64,
        run_id: &'a str,
        asset: &'a str,
        partition: &'a str,
        code_version: &'a str,
        input_version: &'a str,
        data_version: &'a str,
        row_count: u64,
        bytes_written: u64,
        wall_ms: u64,
        /// The output schema as the catalog stores it: a JSON array, as text.
        schema_json: &'a str,
        inputs: Vec<Input<'a>>,
        files: Vec<File<'a>>,
        committed_at: &'a DateTime<Utc>,
        metrics: wire::Metrics<'a>,
        checks: Vec<CheckResult<'a>>,
    }

    impl<'a> From<&'a cairn_catalog::MaterializationRecord> for Materialization<'a> {
        fn from(m: &'a cairn_catalog::MaterializationRecord) -> Self {
            let b = &m.body;
            Materialization {
                id: m.id.0,
                run_id: &b.run_id.0,
                asset: &b.asset,
                partition: &b.partition,
                code_version: &b.code_version,
                input_version: &b.input_version,
                data_version: &b.data_version,
                row_count: b.row_count,
                bytes_written: b.bytes_written,
                wall_ms: b.wall_ms,
                schema_json: &b.schema_json,
                inputs: b
                    .inputs
                    .iter()
                    .map(|i| Input {
                        name: &i.name,
                        kind: i.kind.into(),
                        partition: &i.partition,
                        data_version: &i.data_version,
                        materialization: i.materialization.map(|m| m.0),
                    })
                    .collect(),
                files: b
                    .files
                    .iter()
                    .map(|f| File {
                        path: &f.path,
                        size_bytes: f.size_bytes,
                        row_count: f.row_count,
                    })
                    .collect(),
                committed_at: &b.committed_at,
                metrics: (&b.metrics).into(),
                checks: b
                    .checks
                    .iter()
                    .map(|c| CheckResult {
                        name: &c.name,
                        severity: &c.severity,
                        passed: c.passed,
                        failing_rows: c.failing_rows,
                        sample_json: &c.sample_json,
                        error: c.error.as_deref(),
                    })
                    .collect(),
            }
        }
    }

    /// The exact version of one upstream partition a version read.
    #[derive(Serialize)]
    struct Input<'a> {
        name: &'a str,
        kind: InputKind,
        partition: &'a str,
        data_version: &'a str,
        materialization: Option<i64>,
    }

    /// What an upstream is.
    #[derive(Serialize)]
    #[serde(rename_all = "snake_case")]
    pub(super) enum InputKind {
        Source,
        Asset,
    }

    impl From<cairn_catalog::UpstreamKind> for InputKind {
        fn from(k: cairn_catalog::UpstreamKind) -> Self {
            match k {
                cairn_catalog::UpstreamKind::Source => InputKind::Source,
                cairn_catalog::UpstreamKind::Asset => InputKind::Asset,
            }
        }
    }

    /// One file of a version.
    #[derive(Serialize)]
    struct File<'a> {
        path: &'a str,
        size_bytes: u64,
        row_count: u64,
    }

    /// A check result as recorded with the version (its failing rows as a
    /// JSON array, as text).
    #[derive(Serialize)]
    struct CheckResult<'a> {
        name: &'a str,
        severity: &'a str,
        passed: bool,
        failing_rows: u64,
        sample_json: &'a str,
        error: Option<&'a str>,
    }
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
                let name = if i.partition.is_empty() {
                    i.name.clone()
                } else {
                    format!("{} [{}]", i.name, i.partition)
                };
                writeln!(
                    out,
                    "    {} {name} data {}{from}",
                    i.kind.as_str(),
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

    use super::{render_json, render_text};
    use crate::commands::testing::{json, open, redact, rendered, shop, wall_fixed};

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
        wall_fixed(&mut d.status);
    }

    fn show(asset: &str) -> String {
        let dir = shop();
        let ws = open(dir.path());
        let mut d = ws.details(asset).unwrap_or_else(|e| panic!("{e}"));
        measured_fixed(&mut d);
        let text = rendered(|out| render_text(&d, &|path| ws.file_url(path), out));
        redact(&text, dir.path())
    }

    /// `cairn show ASSET --format json` on the shop.
    fn show_json(asset: &str) -> String {
        let dir = shop();
        let ws = open(dir.path());
        let mut d = ws.details(asset).unwrap_or_else(|e| panic!("{e}"));
        measured_fixed(&mut d);
        redact(&json(|out| render_json(&d, out)), dir.path())
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
              versions  code 0c071de92d3f  input 9cc44c0bfbd8  data 4f10717f1f0a
              rows      2
              written   1.0 KiB in 35 ms
              read
                source sales [2024-01-01] data c331be908186
                source sales [2024-01-02] data 9d3629ed1901
                source sales [2024-01-03] data ac4fffc566f0
              cost      $0.000004  cpu 0.012s  read 1.1 KiB in 5 requests  written 1.0 KiB in 1 requests  peak memory 1.0 MiB
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
              <time>  run <run>         2 rows  data 4f10717f1f0a  35 ms

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
              <time>  run <run>  [2024-01-02]         1 rows  data 15b1d1c54727  35 ms
              <time>  run <run>  [2024-01-01]         1 rows  data 8cf34600038d  35 ms

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

    /// The JSON of an asset with a current version: its status, definition,
    /// the version with inputs, files, metrics and recorded checks, its
    /// history and latest attempt.
    #[test]
    fn json_of_an_asset_with_a_current_version() {
        expect![[r#"
            {
              "status": {
                "name": "regions",
                "state": "stale",
                "causes": [
                  {
                    "cause": "code_changed"
                  },
                  {
                    "cause": "source_changed",
                    "name": "sales"
                  }
                ],
                "code_version": "dd5ee57c5d1706376a9f7bdc7f31f3a28129d865aa536eeaecbc92b00a8468d6",
                "input_version": "2aa3881cd226d989319fce26718206424eed5f1e662e4b3016a48d3012e74368",
                "current": {
                  "id": 4,
                  "run_id": "<run>",
                  "asset": "regions",
                  "partition": "",
                  "code_version": "0c071de92d3f15c5406d9c38cd960cf270f556019e581510cece8a2744a4602c",
                  "input_version": "9cc44c0bfbd859dd427f9857ca1fd07a6a60b2c283282f324daa74c1e4347d03",
                  "data_version": "4f10717f1f0a8d31159b030b1916e5c4aac8a9496572b208b7de35be74a21c1d",
                  "row_count": 2,
                  "bytes_written": 1057,
                  "wall_ms": 35,
                  "committed_at": "<time>"
                },
                "last_failure": null,
                "partitions": null,
                "failing_checks": [],
                "health": "ok",
                "freshness": null,
                "sla": null
              },
              "file": "assets/regions.sql",
              "description": "Amount per region over all days.",
              "owner": "finance",
              "tags": [],
              "sql": "--- description = \"Amount per region over all days.\"\n--- owner = \"finance\"\n--- checks = [\"unique(region)\", { check = \"row_count(3, 10)\", severity = \"warn\" }]\n\nselect region, sum(amount) as amount, count(*) as sales\nfrom sales\nwhere amount > 0\ngroup by region\norder by region\n",
              "upstream": [
                "sales"
              ],
              "downstream": [
                "big_regions",
                "top",
                "total"
              ],
              "partitioning": null,
              "reads": [
                [
                  "sales",
                  "every partition"
                ]
              ],
              "declared_columns": [],
              "current": {
                "id": 4,
                "run_id": "<run>",
                "asset": "regions",
                "partition": "",
                "code_version": "0c071de92d3f15c5406d9c38cd960cf270f556019e581510cece8a2744a4602c",
                "input_version": "9cc44c0bfbd859dd427f9857ca1fd07a6a60b2c283282f324daa74c1e4347d03",
                "data_version": "4f10717f1f0a8d31159b030b1916e5c4aac8a9496572b208b7de35be74a21c1d",
                "row_count": 2,
                "bytes_written": 1057,
                "wall_ms": 35,
                "schema_json": "[{\"name\":\"region\",\"nullable\":true,\"type\":\"Utf8\"},{\"name\":\"amount\",\"nullable\":true,\"type\":\"Int64\"},{\"name\":\"sales\",\"nullable\":false,\"type\":\"Int64\"}]",
                "inputs": [
                  {
                    "name": "sales",
                    "kind": "source",
                    "partition": "2024-01-01",
                    "data_version": "c331be908186deeaa098161fe23f42a7517461aeca894385ea6e22e0efc06ad1",
                    "materialization": null
                  },
                  {
                    "name": "sales",
                    "kind": "source",
                    "partition": "2024-01-02",
                    "data_version": "9d3629ed1901f2bea58e9c445c86a7aab4887a14af84892f357f239f4cc6b5dd",
                    "materialization": null
                  },
                  {
                    "name": "sales",
                    "kind": "source",
                    "partition": "2024-01-03",
                    "data_version": "ac4fffc566f05320b69507c93b1283aa713902a2723391d62365f43151a4b86c",
                    "materialization": null
                  }
                ],
                "files": [
                  {
                    "path": "regions/<run>-00000.parquet",
                    "size_bytes": 1057,
                    "row_count": 2
                  }
                ],
                "committed_at": "<time>",
                "metrics": {
                  "rows_added": null,
                  "rows_removed": null,
                  "columns": [
                    {
                      "name": "region",
                      "null_count": 0,
                      "min": "eu",
                      "max": "us"
                    },
                    {
                      "name": "amount",
                      "null_count": 0,
                      "min": "165",
                      "max": "380"
                    },
                    {
                      "name": "sales",
                      "null_count": 0,
                      "min": "2",
                      "max": "2"
                    }
                  ],
                  "cpu_seconds": 0.012,
                  "datafusion_seconds": 0.01,
                  "output_rows": 2,
                  "bytes_scanned": 0,
                  "spilled_bytes": 0,
                  "bytes_read": 1152,
                  "read_requests": 5,
                  "objects_read": 3,
                  "bytes_written": 1057,
                  "write_requests": 1,
                  "other_requests": 8,
                  "peak_memory_bytes": 1048576,
                  "cost_usd": 4e-6
                },
                "checks": [
                  {
                    "name": "unique(region)",
                    "severity": "error",
                    "passed": true,
                    "failing_rows": 0,
                    "sample_json": "[]",
                    "error": null
                  },
                  {
                    "name": "row_count(3, 10)",
                    "severity": "warn",
                    "passed": false,
                    "failing_rows": 1,
                    "sample_json": "[{\"row_count\":2}]",
                    "error": null
                  }
                ]
              },
              "history": [
                {
                  "id": 4,
                  "run_id": "<run>",
                  "asset": "regions",
                  "partition": "",
                  "code_version": "0c071de92d3f15c5406d9c38cd960cf270f556019e581510cece8a2744a4602c",
                  "input_version": "9cc44c0bfbd859dd427f9857ca1fd07a6a60b2c283282f324daa74c1e4347d03",
                  "data_version": "4f10717f1f0a8d31159b030b1916e5c4aac8a9496572b208b7de35be74a21c1d",
                  "row_count": 2,
                  "bytes_written": 1057,
                  "wall_ms": 35,
                  "committed_at": "<time>"
                }
              ],
              "last_attempt": {
                "run_id": "<run>",
                "asset": "regions",
                "partition": "",
                "outcome": "materialized",
                "error": null,
                "at": "<time>"
              }
            }
        "#]].assert_eq(&show_json("regions"));
    }

    /// The JSON of a partitioned asset: partition counts in its status, no
    /// current version, how it reads its upstream.
    #[test]
    fn json_of_a_partitioned_asset() {
        expect![[r#"
            {
              "status": {
                "name": "daily",
                "state": "stale",
                "causes": [
                  {
                    "cause": "source_changed",
                    "name": "sales"
                  },
                  {
                    "cause": "never_materialized"
                  }
                ],
                "code_version": "1dbf9b27a8a8c92381ab5c3c53075af448c938f44359d3feaad482465b6edd87",
                "input_version": null,
                "current": null,
                "last_failure": null,
                "partitions": {
                  "total": 3,
                  "fresh": 1,
                  "stale": 1,
                  "missing": 1,
                  "failed": 0,
                  "rows": 2,
                  "last_committed_at": "<time>",
                  "stale_causes": [
                    "source sales changed"
                  ],
                  "sla_warn": 0,
                  "sla_failed": 0,
                  "most_overdue": null,
                  "list": [
                    {
                      "key": "2024-01-01",
                      "state": "fresh",
                      "causes": [],
                      "input_version": null,
                      "current": {
                        "id": 2,
                        "run_id": "<run>",
                        "code_version": "1dbf9b27a8a8c92381ab5c3c53075af448c938f44359d3feaad482465b6edd87",
                        "input_version": "74d2c28b67379230f14a31a42fb25a32998e6ffcf746789abd9e5bd8d95843aa",
                        "data_version": "8cf34600038de6985aad5334480ed4de93d58c7426d9ec69a865e6d92f16c67c",
                        "row_count": 1,
                        "bytes_written": 1000,
                        "wall_ms": 35,
                        "committed_at": "<time>"
                      },
                      "last_failure": null,
                      "health": "ok",
                      "sla": null
                    },
                    {
                      "key": "2024-01-02",
                      "state": "stale",
                      "causes": [
                        {
                          "cause": "source_changed",
                          "name": "sales"
                        }
                      ],
                      "input_version": "72b91b88c7b02cce1b625cf4a17a52cb7febd2c00471e98f64792760e04cd62e",
                      "current": {
                        "id": 3,
                        "run_id": "<run>",
                        "code_version": "1dbf9b27a8a8c92381ab5c3c53075af448c938f44359d3feaad482465b6edd87",
                        "input_version": "70c9981f524962c6f2f32c42abbe063ea0abbf9f2022f4cf4410122d76f52c3f",
                        "data_version": "15b1d1c54727d28ee188f11d0f5b929e5be67bba177977f34894f566312eeee6",
                        "row_count": 1,
                        "bytes_written": 1000,
                        "wall_ms": 35,
                        "committed_at": "<time>"
                      },
                      "last_failure": null,
                      "health": "ok",
                      "sla": null
                    },
                    {
                      "key": "2024-01-03",
                      "state": "never_materialized",
                      "causes": [
                        {
                          "cause": "never_materialized"
                        }
                      ],
                      "input_version": "2e903a778d82d16d445e544e17743fca165404fe708b82e17cad9dfe091e59f3",
                      "current": null,
                      "last_failure": null,
                      "health": "ok",
                      "sla": null
                    }
                  ]
                },
                "failing_checks": [],
                "health": "ok",
                "freshness": null,
                "sla": null
              },
              "file": "assets/daily.sql",
              "description": "Sales and amount per day.",
              "owner": "analytics",
              "tags": [
                "daily"
              ],
              "sql": "--- description = \"Sales and amount per day.\"\n--- owner = \"analytics\"\n--- tags = [\"daily\"]\n--- checks = [\"not_null(day)\"]\n--- [partitions]\n--- type = \"daily\"\n--- start = \"2024-01-01\"\n--- end = \"2024-01-03\"\n\nselect {{start_date}} as day, count(*) as sales, coalesce(sum(amount), 0) as amount\nfrom sales\n",
              "upstream": [
                "sales"
              ],
              "downstream": [
                "running"
              ],
              "partitioning": "daily `date` from 2024-01-01 to 2024-01-03 (UTC)",
              "reads": [
                [
                  "sales",
                  "the same partition"
                ]
              ],
              "declared_columns": [],
              "current": null,
              "history": [
                {
                  "id": 3,
                  "run_id": "<run>",
                  "asset": "daily",
                  "partition": "2024-01-02",
                  "code_version": "1dbf9b27a8a8c92381ab5c3c53075af448c938f44359d3feaad482465b6edd87",
                  "input_version": "70c9981f524962c6f2f32c42abbe063ea0abbf9f2022f4cf4410122d76f52c3f",
                  "data_version": "15b1d1c54727d28ee188f11d0f5b929e5be67bba177977f34894f566312eeee6",
                  "row_count": 1,
                  "bytes_written": 1000,
                  "wall_ms": 35,
                  "committed_at": "<time>"
                },
                {
                  "id": 2,
                  "run_id": "<run>",
                  "asset": "daily",
                  "partition": "2024-01-01",
                  "code_version": "1dbf9b27a8a8c92381ab5c3c53075af448c938f44359d3feaad482465b6edd87",
                  "input_version": "74d2c28b67379230f14a31a42fb25a32998e6ffcf746789abd9e5bd8d95843aa",
                  "data_version": "8cf34600038de6985aad5334480ed4de93d58c7426d9ec69a865e6d92f16c67c",
                  "row_count": 1,
                  "bytes_written": 1000,
                  "wall_ms": 35,
                  "committed_at": "<time>"
                }
              ],
              "last_attempt": {
                "run_id": "<run>",
                "asset": "daily",
                "partition": "2024-01-02",
                "outcome": "materialized",
                "error": null,
                "at": "<time>"
              }
            }
        "#]].assert_eq(&show_json("daily"));
    }

    /// The JSON of an asset whose only attempt failed its checks.
    #[test]
    fn json_of_an_asset_never_committed() {
        expect![[r#"
            {
              "status": {
                "name": "big_regions",
                "state": "failed",
                "causes": [
                  {
                    "cause": "never_materialized"
                  },
                  {
                    "cause": "upstream_stale",
                    "name": "regions"
                  }
                ],
                "code_version": "d73e9399cee32d9e014d8f10845fc7e5ebdc8be2a065bf0164d4eec8b2fb9ccf",
                "input_version": "168e545e1f3f85adc80e70ba343187137b3e1b4be375322593abdcbc90be1673",
                "current": null,
                "last_failure": {
                  "run_id": "<run>",
                  "asset": "big_regions",
                  "partition": "",
                  "outcome": "failed",
                  "error": "assets/big_regions.sql: checks failed, output not committed: expression(amount < 100) (2 failing rows)",
                  "at": "<time>"
                },
                "partitions": null,
                "failing_checks": [],
                "health": "failed_run",
                "freshness": null,
                "sla": null
              },
              "file": "assets/big_regions.sql",
              "description": null,
              "owner": null,
              "tags": [],
              "sql": "--- checks = [\"expression(amount < 100)\"]\nselect region, amount from regions where amount > 50\n",
              "upstream": [
                "regions"
              ],
              "downstream": [],
              "partitioning": null,
              "reads": [],
              "declared_columns": [],
              "current": null,
              "history": [],
              "last_attempt": {
                "run_id": "<run>",
                "asset": "big_regions",
                "partition": "",
                "outcome": "failed",
                "error": "assets/big_regions.sql: checks failed, output not committed: expression(amount < 100) (2 failing rows)",
                "at": "<time>"
              }
            }
        "#]].assert_eq(&show_json("big_regions"));
    }

    /// Every kind of input, as the JSON gives it.
    #[test]
    fn every_input_kind() {
        use cairn_catalog::UpstreamKind as C;
        let names: Vec<String> = [C::Source, C::Asset]
            .map(|k| serde_json::to_string(&super::json::InputKind::from(k)).unwrap_or_default())
            .into();
        expect![[r#"
            "source"
            "asset""#]]
        .assert_eq(&names.join("\n"));
    }
}
