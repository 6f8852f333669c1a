//! One function per subcommand.

use std::collections::BTreeSet;
use std::io::Write;

use datafusion::arrow::array::RecordBatch;
use serde::Serialize;

use cairn_engine::NodeKind;
use cairn_engine::short_version as short;
use cairn_engine::{AssetOutcome, AssetState, BackfillOptions, MaterializeOptions, Workspace};

use crate::Failure;
use crate::args::{
    AuditArgs, BackfillArgs, CheckArgs, Cli, Command, CostArgs, CostSort, Format, GcArgs,
    LineageArgs, MaterializeArgs, QueryArgs, QueryFormat, ShowArgs, StatusArgs,
};
use crate::output::{RunProgress, bytes, duration, print_json};

/// Runs the parsed command; returns the exit code.
pub fn run(cli: Cli) -> Result<u8, Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))?;
    let ws = Workspace::open(&cli.project)?;
    match cli.command {
        Command::Materialize(args) => runtime.block_on(materialize(&ws, args)),
        Command::Status(args) => status(&ws, args),
        Command::Query(args) => runtime.block_on(query(&ws, args)),
        Command::Show(args) => show(&ws, args),
        Command::Lineage(args) if args.column.is_some() => {
            runtime.block_on(column_lineage(&ws, args))
        }
        Command::Lineage(args) => lineage(&ws, args),
        Command::Backfill(args) => runtime.block_on(backfill(&ws, args)),
        Command::Check(args) => runtime.block_on(check(&ws, args)),
        Command::Cost(args) => cost(&ws, args),
        Command::Audit(args) => audit(&ws, args),
        Command::Gc(args) => runtime.block_on(gc(&ws, args)),
    }
}

fn parse_as_of(text: &str) -> cairn_engine::AsOf {
    use cairn_engine::AsOf;
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return AsOf::Time(t.with_timezone(&chrono::Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return AsOf::Time(t.and_utc());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return AsOf::Time(d.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    AsOf::Run(cairn_catalog::RunId(text.to_owned()))
}

fn audit(ws: &Workspace, args: AuditArgs) -> Result<u8, Failure> {
    let mut out = std::io::stdout().lock();
    if args.log {
        let since = since(args.since.as_deref())?;
        let entries = ws
            .catalog
            .audit_log(since, args.who.as_deref())
            .map_err(|e| Failure::Runtime(e.to_string()))?;
        if args.format == Format::Json {
            print_json(&entries)?;
            return Ok(0);
        }
        for e in &entries {
            let e2 = &e.entry;
            // The full definition state is in the JSON output; text shows the change.
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
        return Ok(0);
    }
    let asset = args.asset.unwrap_or_default();
    let node = ws.provenance(&asset, &args.partition, args.version)?;
    if args.format == Format::Json {
        print_json(&node)?;
        return Ok(0);
    }
    fn print(
        out: &mut impl Write,
        n: &cairn_engine::Provenance,
        indent: &str,
    ) -> std::io::Result<()> {
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
            print(out, i, &format!("{indent}  "))?;
        }
        Ok(())
    }
    print(&mut out, &node, "")?;
    Ok(0)
}

async fn gc(ws: &Workspace, args: GcArgs) -> Result<u8, Failure> {
    let report = ws.gc(args.dry_run).await?;
    if args.format == Format::Json {
        print_json(&report)?;
        return Ok(0);
    }
    let mut out = std::io::stdout().lock();
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for f in &report.uncommitted {
        writeln!(out, "{verb} {f} (never committed)")?;
    }
    for f in &report.expired {
        writeln!(out, "{verb} {f} (replaced, past retention)")?;
    }
    writeln!(
        out,
        "{} {} file(s), {}",
        verb,
        report.uncommitted.len() + report.expired.len(),
        bytes(report.bytes)
    )?;
    Ok(0)
}

async fn check(ws: &Workspace, args: CheckArgs) -> Result<u8, Failure> {
    let (run_id, reports) = ws.check(&args.selection, &command_line()).await?;
    let failing = reports
        .iter()
        .flat_map(|r| r.checks.iter())
        .filter(|c| !c.passed)
        .count();
    let code = u8::from(
        reports
            .iter()
            .flat_map(|r| r.checks.iter())
            .any(|c| c.blocks()),
    );
    if args.format == Format::Json {
        #[derive(Serialize)]
        struct Out<'a> {
            run_id: Option<&'a cairn_catalog::RunId>,
            failing: usize,
            results: &'a [cairn_engine::CheckReport],
        }
        print_json(&Out {
            run_id: run_id.as_ref(),
            failing,
            results: &reports,
        })?;
        return Ok(code);
    }
    let mut out = std::io::stdout().lock();
    if reports.is_empty() {
        writeln!(out, "No committed asset with checks selected.")?;
        return Ok(0);
    }
    for r in &reports {
        let name = if r.partition.is_empty() {
            r.asset.clone()
        } else {
            format!("{} [{}]", r.asset, r.partition)
        };
        for c in &r.checks {
            let verdict = match (&c.error, c.passed) {
                (Some(e), _) => format!("ERROR  could not run: {e}"),
                (None, true) => "pass".to_owned(),
                (None, false) => format!(
                    "{}  {} failing row(s)",
                    if c.severity == "error" {
                        "FAIL"
                    } else {
                        "WARN"
                    },
                    c.failing_rows
                ),
            };
            writeln!(out, "  {name:<28} {:<48} {verdict}", c.name)?;
            for row in c.sample.iter().take(3).filter(|_| !c.passed) {
                writeln!(out, "      e.g. {row}")?;
            }
        }
    }
    writeln!(out, "{failing} failing check(s)")?;
    Ok(code)
}

/// `7d`, `12h`, `30m`, `2w` as a duration: `Ok(None)` when malformed,
/// `Err` when larger than a time can hold.
fn parse_age(text: &str) -> Result<Option<chrono::TimeDelta>, ()> {
    let Some(split) = text.find(|c: char| !c.is_ascii_digit()) else {
        return Ok(None);
    };
    let Ok(n) = text[..split].parse::<i64>() else {
        // Digits that do not fit an i64 are a number, just too large.
        return if split > 0 { Err(()) } else { Ok(None) };
    };
    let age = match &text[split..] {
        "m" => chrono::TimeDelta::try_minutes(n),
        "h" => chrono::TimeDelta::try_hours(n),
        "d" => chrono::TimeDelta::try_days(n),
        "w" => chrono::TimeDelta::try_weeks(n),
        _ => return Ok(None),
    };
    age.map(Some).ok_or(())
}

/// `--since AGE` as the instant that long ago.
fn since(text: Option<&str>) -> Result<Option<chrono::DateTime<chrono::Utc>>, Failure> {
    let Some(text) = text else { return Ok(None) };
    let too_large = || {
        Failure::Usage(format!(
            "--since `{text}` reaches before the earliest time Cairn can represent; give a smaller age such as 52w"
        ))
    };
    let age = parse_age(text).map_err(|()| too_large())?.ok_or_else(|| {
        Failure::Usage(format!(
            "--since `{text}`: give an age such as 30m, 12h, 7d or 2w"
        ))
    })?;
    chrono::Utc::now()
        .checked_sub_signed(age)
        .map(Some)
        .ok_or_else(too_large)
}

fn cost(ws: &Workspace, args: CostArgs) -> Result<u8, Failure> {
    let since = since(args.since.as_deref())?;
    let mut costs = ws.cost(&args.selection, since, args.rollup)?;
    let key = |c: &cairn_engine::AssetCost| {
        let f = c.rollup.as_ref().unwrap_or(&c.own);
        match args.sort {
            CostSort::Name => 0.0,
            CostSort::Cost => f.cost_usd,
            CostSort::Cpu => f.cpu_seconds,
            CostSort::Read => f.bytes_read as f64,
        }
    };
    if args.sort != CostSort::Name {
        costs.sort_by(|a, b| key(b).total_cmp(&key(a)));
    }
    if args.format == Format::Json {
        print_json(&costs)?;
        return Ok(0);
    }
    let mut out = std::io::stdout().lock();
    let width = costs
        .iter()
        .map(|c| c.asset.len())
        .max()
        .unwrap_or(5)
        .max(5);
    writeln!(
        out,
        "{:<width$}  {:>5}  {:>9}  {:>9}  {:>10}  {:>10}  {:>8}  {:>12}{}",
        "ASSET",
        "MATS",
        "WALL",
        "CPU",
        "READ",
        "WRITTEN",
        "REQUESTS",
        "COST USD",
        if args.rollup { "  ROLLUP USD" } else { "" }
    )?;
    for c in &costs {
        let f = &c.own;
        let rollup = c
            .rollup
            .as_ref()
            .map(|r| format!("  {:>10.6}", r.cost_usd))
            .unwrap_or_default();
        writeln!(
            out,
            "{:<width$}  {:>5}  {:>8.2}s  {:>8.3}s  {:>10}  {:>10}  {:>8}  {:>12.6}{rollup}",
            c.asset,
            f.materializations,
            f.wall_seconds,
            f.cpu_seconds,
            bytes(f.bytes_read),
            bytes(f.bytes_written),
            f.requests,
            f.cost_usd
        )?;
    }
    Ok(0)
}

fn default_jobs(jobs: Option<u16>) -> usize {
    jobs.map(usize::from).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

async fn backfill(ws: &Workspace, args: BackfillArgs) -> Result<u8, Failure> {
    let progress = RunProgress::new(args.format == Format::Json);
    let jobs = default_jobs(args.jobs);
    let report = match &args.resume {
        Some(id) => {
            if !args.selection.is_empty()
                || args.from.is_some()
                || args.to.is_some()
                || args.partitions.is_some()
            {
                return Err(Failure::Usage(
                    "--resume continues a recorded backfill as planned; give no selection, --from, --to or --partitions with it".to_owned(),
                ));
            }
            ws.resume_backfill(
                &cairn_catalog::BackfillId(id.clone()),
                jobs,
                &command_line(),
                &progress,
            )
            .await
        }
        None => {
            let opts = BackfillOptions {
                selection: args.selection,
                from: args.from,
                to: args.to,
                partitions: args.partitions.map(|p| {
                    p.split(',')
                        .map(|k| k.trim().to_owned())
                        .filter(|k| !k.is_empty())
                        .collect()
                }),
                force: args.force,
                jobs,
                command: command_line(),
            };
            ws.backfill(&opts, &progress).await
        }
    };
    progress.finish();
    let report = report?;
    let code = u8::from(report.run.has_failures());
    if args.format == Format::Json {
        print_json(&report)?;
        return Ok(code);
    }
    let count =
        |f: fn(&AssetOutcome) -> bool| report.run.results.iter().filter(|r| f(&r.outcome)).count();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "backfill {}: {} partition(s) planned, {} already done before, {} materialized, {} fresh, {} failed, {} skipped in {}",
        report.backfill_id,
        report.planned,
        report.already_done,
        count(|o| matches!(o, AssetOutcome::Materialized(_))),
        count(|o| matches!(o, AssetOutcome::Fresh { .. })),
        count(|o| matches!(o, AssetOutcome::Failed { .. })),
        count(|o| matches!(o, AssetOutcome::Skipped { .. })),
        duration(report.run.wall)
    )?;
    if code != 0 {
        writeln!(
            out,
            "resume with: cairn backfill --resume {}",
            report.backfill_id
        )?;
    }
    Ok(code)
}

fn command_line() -> String {
    let args: Vec<String> = std::env::args().collect();
    let mut line = String::from("cairn");
    for a in args.iter().skip(1) {
        line.push(' ');
        line.push_str(a);
    }
    line
}

async fn materialize(ws: &Workspace, args: MaterializeArgs) -> Result<u8, Failure> {
    let jobs = args.jobs.map(usize::from).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let opts = MaterializeOptions {
        selection: args.selection,
        force: args.force,
        jobs,
        command: command_line(),
        partitions: cairn_engine::PartitionFilter::All,
        backfill: None,
    };
    if args.explain {
        let units = ws.explain(&opts)?;
        let mut out = std::io::stdout().lock();
        match args.format {
            Format::Json => crate::explain::render_json(&units, &mut out)?,
            Format::Text => crate::explain::render_text(&units, &mut out)?,
        }
        return Ok(0);
    }
    let progress = RunProgress::new(args.format == Format::Json);
    let report = ws.materialize(&opts, &progress).await;
    progress.finish();
    let report = report?;
    let code = u8::from(report.has_failures());
    if args.format == Format::Json {
        print_json(&report)?;
        return Ok(code);
    }
    let mut out = std::io::stdout().lock();
    let Some(run_id) = &report.run_id else {
        let assets: BTreeSet<&str> = report.results.iter().map(|r| r.asset.as_str()).collect();
        let what = if assets.len() == report.results.len() {
            format!("{} asset(s) fresh", assets.len())
        } else {
            format!(
                "{} asset(s), {} partition(s), all fresh",
                assets.len(),
                report.results.len()
            )
        };
        writeln!(
            out,
            "Everything is up to date ({what}): no DataFusion work done."
        )?;
        return Ok(code);
    };
    let count =
        |f: fn(&AssetOutcome) -> bool| report.results.iter().filter(|r| f(&r.outcome)).count();
    writeln!(
        out,
        "run {run_id}: {} materialized, {} fresh, {} failed, {} skipped in {}",
        count(|o| matches!(o, AssetOutcome::Materialized(_))),
        count(|o| matches!(o, AssetOutcome::Fresh { .. })),
        count(|o| matches!(o, AssetOutcome::Failed { .. })),
        count(|o| matches!(o, AssetOutcome::Skipped { .. })),
        duration(report.wall)
    )?;
    Ok(code)
}

fn status(ws: &Workspace, args: StatusArgs) -> Result<u8, Failure> {
    let mut statuses = ws.status(&args.selection)?;
    let not_fresh = statuses
        .iter()
        .filter(|s| s.state != AssetState::Fresh)
        .count();
    let failing_checks: usize = statuses.iter().map(|s| s.failing_checks.len()).sum();
    let code = u8::from(args.check && (not_fresh > 0 || failing_checks > 0));
    if !args.partitions {
        for s in &mut statuses {
            if let Some(p) = &mut s.partitions {
                p.list.clear();
            }
        }
    }
    if args.format == Format::Json {
        #[derive(Serialize)]
        struct Out<'a> {
            fresh: usize,
            not_fresh: usize,
            failing_checks: usize,
            assets: &'a [cairn_engine::AssetStatus],
        }
        print_json(&Out {
            fresh: statuses.len() - not_fresh,
            not_fresh,
            failing_checks,
            assets: &statuses,
        })?;
        return Ok(code);
    }
    let mut out = std::io::stdout().lock();
    let key_width = statuses
        .iter()
        .filter_map(|s| s.partitions.as_ref())
        .flat_map(|p| p.list.iter().map(|u| u.key.len() + 2))
        .max()
        .unwrap_or(0);
    let width = statuses
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(5)
        .max(5)
        .max(key_width);
    writeln!(
        out,
        "{:<width$}  {:<18}  {:<19}  {:>10}  DETAIL",
        "ASSET", "STATE", "LAST MATERIALIZED", "ROWS"
    )?;
    for s in &statuses {
        let (when, rows, detail) = match &s.partitions {
            None => {
                let when = s
                    .current
                    .as_ref()
                    .map(|c| c.committed_at.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_else(|| "-".to_owned());
                let rows = s
                    .current
                    .as_ref()
                    .map(|c| c.row_count.to_string())
                    .unwrap_or_else(|| "-".to_owned());
                let mut detail: Vec<String> = s.causes.iter().map(ToString::to_string).collect();
                if let Some(f) = &s.last_failure {
                    let current = s.current.as_ref().map(|c| c.committed_at);
                    detail.insert(0, failure_text(f, current));
                }
                for c in &s.failing_checks {
                    detail.push(format!("check failing: {c}"));
                }
                (when, rows, detail.join("; "))
            }
            Some(p) => {
                let when = p
                    .last_committed_at
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_else(|| "-".to_owned());
                let rows = if p.fresh + p.stale + p.failed == 0 {
                    "-".to_owned()
                } else {
                    p.rows.to_string()
                };
                (when, rows, {
                    let mut d = format!("{} partitions: {}", p.total, p.describe());
                    if !s.failing_checks.is_empty() {
                        d.push_str(&format!(
                            "; checks failing: {}",
                            s.failing_checks.join(", ")
                        ));
                    }
                    d
                })
            }
        };
        writeln!(
            out,
            "{:<width$}  {:<18}  {:<19}  {:>10}  {}",
            s.name,
            s.state.as_str(),
            when,
            rows,
            detail
        )?;
        if let Some(p) = &s.partitions {
            for u in &p.list {
                let mut detail: Vec<String> = u.causes.iter().map(ToString::to_string).collect();
                if let Some(f) = &u.last_failure {
                    let current = u.current.as_ref().map(|c| c.committed_at);
                    detail.insert(0, failure_text(f, current));
                }
                let when = u
                    .current
                    .as_ref()
                    .map(|c| c.committed_at.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_else(|| "-".to_owned());
                let rows = u
                    .current
                    .as_ref()
                    .map(|c| c.row_count.to_string())
                    .unwrap_or_else(|| "-".to_owned());
                writeln!(
                    out,
                    "{:<width$}  {:<18}  {:<19}  {:>10}  {}",
                    format!("  {}", u.key),
                    u.state.as_str(),
                    when,
                    rows,
                    detail.join("; ")
                )?;
            }
        }
    }
    writeln!(
        out,
        "{} fresh, {} not fresh",
        statuses.len() - not_fresh,
        not_fresh
    )?;
    Ok(code)
}

/// What a failed latest attempt means for the version being served: when
/// it failed its checks, its output was never committed and the current
/// version (if any) is the one that passed them.
fn failure_text(
    f: &cairn_catalog::AttemptRecord,
    current: Option<chrono::DateTime<chrono::Utc>>,
) -> String {
    let when = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
    let error = f.error.as_deref().unwrap_or("unknown error");
    let attempt = when(f.at);
    match (cairn_engine::failed_checks(error), current) {
        (Some(checks), Some(t)) => format!(
            "the last attempt ({attempt}) failed its checks and was not committed: {checks}; the current version (committed {}) passed its checks and stays current",
            when(t)
        ),
        (Some(checks), None) => format!(
            "the last attempt ({attempt}) failed its checks and was not committed: {checks}; no version is committed yet"
        ),
        (None, Some(t)) => format!(
            "the last attempt ({attempt}) failed: {error}; the current version (committed {}) stays current",
            when(t)
        ),
        (None, None) => format!("the last attempt ({attempt}) failed: {error}"),
    }
}

async fn query(ws: &Workspace, args: QueryArgs) -> Result<u8, Failure> {
    let (schema, batches) = match &args.as_of {
        Some(text) => ws.query_as_of(&args.sql, &parse_as_of(text)).await?,
        None => ws.query(&args.sql).await?,
    };
    let mut out = std::io::stdout().lock();
    let fail = |e: datafusion::arrow::error::ArrowError| {
        Failure::Runtime(format!("formatting results: {e}"))
    };
    match args.format {
        QueryFormat::Table => {
            let batches = if batches.is_empty() {
                vec![RecordBatch::new_empty(schema)]
            } else {
                batches
            };
            let table =
                datafusion::arrow::util::pretty::pretty_format_batches(&batches).map_err(fail)?;
            writeln!(out, "{table}")?;
        }
        QueryFormat::Csv => {
            let mut writer = datafusion::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut out);
            if batches.is_empty() {
                writer
                    .write(&RecordBatch::new_empty(schema))
                    .map_err(fail)?;
            }
            for b in &batches {
                writer.write(b).map_err(fail)?;
            }
        }
        QueryFormat::Json => {
            // Explicit nulls: every row has every column, as readers expect.
            let mut writer = datafusion::arrow::json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, datafusion::arrow::json::writer::JsonArray>(&mut out);
            for b in &batches {
                writer.write(b).map_err(fail)?;
            }
            writer.finish().map_err(fail)?;
            drop(writer);
            writeln!(out)?;
        }
    }
    Ok(0)
}

fn show(ws: &Workspace, args: ShowArgs) -> Result<u8, Failure> {
    let d = ws.details(&args.asset)?;
    if args.format == Format::Json {
        print_json(&d)?;
        return Ok(0);
    }
    let mut out = std::io::stdout().lock();
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
                    ws.storage.file_url(&f.path),
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
    writeln!(out, "\nsql ({})\n{}", d.file, d.sql.trim_end())?;
    Ok(0)
}

fn list_or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(", ")
    }
}

async fn column_lineage(ws: &Workspace, args: LineageArgs) -> Result<u8, Failure> {
    let column = args.column.unwrap_or_default();
    let tree = ws.column_lineage(&args.asset, &column, args.depth).await?;
    if args.format == Format::Json {
        print_json(&tree)?;
        return Ok(0);
    }
    fn print(
        out: &mut impl Write,
        n: &cairn_engine::ColumnNode,
        indent: &str,
    ) -> std::io::Result<()> {
        let kind = n
            .kind
            .map(|k| {
                format!(
                    "  ({})",
                    serde_json::to_value(k)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                )
            })
            .unwrap_or_default();
        let source = if n.is_source {
            " [source]"
        } else if n.is_dimension {
            " [partition dimension]"
        } else if n.earlier_partitions {
            " [earlier partitions]"
        } else {
            ""
        };
        writeln!(out, "{indent}{}.{}{source}{kind}", n.table, n.column)?;
        for u in &n.upstream {
            print(out, u, &format!("{indent}  "))?;
        }
        Ok(())
    }
    let mut out = std::io::stdout().lock();
    print(&mut out, &tree, "")?;
    Ok(0)
}

fn lineage(ws: &Workspace, args: LineageArgs) -> Result<u8, Failure> {
    let graph = &ws.graph;
    if !graph.contains(&args.asset) {
        let hint = cairn_assets::closest_name(&args.asset, graph.names())
            .map(|c| format!(" (did you mean `{c}`?)"))
            .unwrap_or_default();
        return Err(Failure::Usage(format!(
            "unknown asset `{}`{hint}",
            args.asset
        )));
    }
    let (up, down) = match (args.upstream, args.downstream) {
        (true, false) => (true, false),
        (false, true) => (false, true),
        _ => (true, true),
    };
    if args.format == Format::Json {
        #[derive(Serialize)]
        struct Edge {
            from: String,
            to: String,
        }
        #[derive(Serialize)]
        struct Out {
            asset: String,
            upstream: Vec<String>,
            downstream: Vec<String>,
            edges: Vec<Edge>,
        }
        let upstream: BTreeSet<String> = if up {
            graph.ancestors(&args.asset)
        } else {
            BTreeSet::new()
        };
        let downstream: BTreeSet<String> = if down {
            graph.descendants(&args.asset)
        } else {
            BTreeSet::new()
        };
        let mut nodes: BTreeSet<String> =
            upstream.iter().chain(downstream.iter()).cloned().collect();
        nodes.insert(args.asset.clone());
        let mut edges = Vec::new();
        for n in &nodes {
            for d in graph.downstream(n) {
                if nodes.contains(d) {
                    edges.push(Edge {
                        from: n.clone(),
                        to: d.to_owned(),
                    });
                }
            }
        }
        print_json(&Out {
            asset: args.asset,
            upstream: upstream.into_iter().collect(),
            downstream: downstream.into_iter().collect(),
            edges,
        })?;
        return Ok(0);
    }
    let mut out = std::io::stdout().lock();
    let label = |n: &str| match graph.kind(n) {
        Some(NodeKind::Source) => format!("{n} (source)"),
        _ => n.to_owned(),
    };
    writeln!(out, "{}", label(&args.asset))?;
    if let Some(asset) = ws.project.assets.get(&args.asset)
        && asset.reads_itself()
        && let cairn_assets::partitions::PartitionMapping::Window { offset, lag } =
            asset.mapping(&asset.name)
    {
        let last = -offset;
        let first = last + i64::from(lag);
        let periods = if first == last {
            format!("{last}")
        } else {
            format!("{last} to {first}")
        };
        writeln!(
            out,
            "reads its own earlier partitions ({periods} period(s) back)"
        )?;
    }
    if up {
        writeln!(out, "upstream (reads from):")?;
        tree(&mut out, &args.asset, &|n| graph.upstream(n), &label, "  ")?;
    }
    if down {
        writeln!(out, "downstream (read by):")?;
        tree(
            &mut out,
            &args.asset,
            &|n| graph.downstream(n),
            &label,
            "  ",
        )?;
    }
    Ok(0)
}

fn tree<'g>(
    out: &mut impl Write,
    node: &str,
    next: &dyn Fn(&str) -> Vec<&'g str>,
    label: &dyn Fn(&str) -> String,
    indent: &str,
) -> std::io::Result<()> {
    let children = next(node);
    for (i, child) in children.iter().enumerate() {
        let last = i + 1 == children.len();
        writeln!(
            out,
            "{indent}{}{}",
            if last { "└── " } else { "├── " },
            label(child)
        )?;
        let deeper = format!("{indent}{}", if last { "    " } else { "│   " });
        tree(out, child, next, label, &deeper)?;
    }
    Ok(())
}
