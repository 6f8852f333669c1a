//! The subcommands: dispatch, and what they share (the command line as
//! recorded, `--jobs`, `--since` ages, JSON output). Each command lives in
//! its own file, with its I/O (`run`) apart from its pure rendering
//! (`render_text`, `render_json`); with `--server`, `remote/` fetches the
//! same values from a `cairn serve` and the same renderers print them.

pub(crate) mod alerts;
mod audit;
pub(crate) mod backfill;
mod catalog;
mod check;
mod cost;
mod gc;
pub(crate) mod lineage;
pub(crate) mod materialize;
mod query;
pub(crate) mod remote;
pub(crate) mod show;
mod status;
pub(crate) mod tick;
pub(crate) mod wire;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use serde::Serialize;

use cairn_engine::{Clock, Failpoints, PauseHook, Workspace};

use crate::Failure;
use crate::args::{Cli, Command};

/// Runs the parsed command; returns the exit code.
pub fn run(cli: Cli) -> Result<u8, Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))?;
    // `cairn serve` ignores CAIRN_SERVER (meant for clients sharing its
    // environment); an explicit `--server` is refused with the rest.
    let serving = matches!(cli.command, Command::Serve(_));
    if cli.server.is_some() && !(serving && cli.server_from_env) {
        return runtime.block_on(remote::run(cli));
    }
    if let Command::Serve(args) = &cli.command {
        return runtime.block_on(crate::serve::run(cli.project.clone(), &args.listen));
    }
    if let Command::Catalog(command) = cli.command {
        // Works on catalogs by URL: no project is opened.
        return catalog::run(&cli.project, command);
    }
    let ws = from_environment(Workspace::open(&cli.project)?)?;
    let ws = ws.with_memory_limit(cli.command.memory_limit());
    // Pending alerts go out once the command is done (see `alerts`).
    let _deliver = alerts::DeliverAfter::new(&runtime, &ws, &cli.command);
    match cli.command {
        Command::Materialize(args) => runtime.block_on(materialize::run(&ws, args)),
        Command::Status(args) => status::run(&ws, args),
        Command::Query(args) => runtime.block_on(query::run(&ws, args)),
        Command::Show(args) => show::run(&ws, args),
        Command::Lineage(args) if args.column.is_some() => {
            runtime.block_on(lineage::run_columns(&ws, args))
        }
        Command::Lineage(args) => lineage::run(&ws, args),
        Command::Backfill(args) => runtime.block_on(backfill::run(&ws, args)),
        Command::Check(args) => runtime.block_on(check::run(&ws, args)),
        Command::Cost(args) => cost::run(&ws, args),
        Command::Audit(args) => audit::run(&ws, args),
        Command::Gc(args) => runtime.block_on(gc::run(&ws, args)),
        Command::Tick(args) => runtime.block_on(tick::run(&ws, &cli.project, args)),
        Command::Serve(_) | Command::Catalog(_) => Ok(0),
    }
}

/// Variable that fixes the instant Cairn judges time at (RFC 3339).
pub(crate) const NOW_ENV: &str = "CAIRN_NOW";
/// Variable naming `asset` or `asset[partition]` whose build pauses for an
/// hour once its files are written, before its commit: the crash tests kill
/// the process there.
const HANG_BEFORE_COMMIT_ENV: &str = "CAIRN_TEST_HANG_BEFORE_COMMIT";
/// Variable naming `asset` or `asset[partition]` whose build panics once
/// its files are written (tests the panic hook on a build task).
const PANIC_BEFORE_COMMIT_ENV: &str = "CAIRN_TEST_PANIC_BEFORE_COMMIT";
/// Variable giving a number N: the first N writes of output files (in this
/// process, across its runs) fail with a transient object store error
/// (tests retries; reads are never affected).
const FAIL_STORE_REQUESTS_ENV: &str = "CAIRN_TEST_FAIL_STORE_REQUESTS";

/// The engine's clock and failpoints from the environment — read here, at
/// the edge, and nowhere in the engine.
fn from_environment(ws: Workspace) -> Result<Workspace, Failure> {
    Ok(Environment::read()?.apply(ws))
}

/// What the environment changes in every workspace a command (or the
/// server) opens: `CAIRN_NOW` and the crash tests' hooks.
#[derive(Clone, Default)]
pub(crate) struct Environment {
    clock: Option<Clock>,
    failpoints: Option<Failpoints>,
}

impl Environment {
    /// Reads the variables; a malformed `CAIRN_NOW` is a usage error.
    pub(crate) fn read() -> Result<Environment, Failure> {
        let clock = match std::env::var(NOW_ENV) {
            Ok(text) => {
                let at =
                    parse_instant(&format!("{NOW_ENV}=`{text}`"), &text).map_err(Failure::Usage)?;
                Some(Clock::Fixed(at))
            }
            Err(_) => None,
        };
        let fail_store_requests = match std::env::var(FAIL_STORE_REQUESTS_ENV) {
            Ok(text) => Some(Arc::new(AtomicUsize::new(text.trim().parse().map_err(
                |e| {
                    Failure::Usage(format!(
                        "{FAIL_STORE_REQUESTS_ENV}=`{text}` is not a number of requests ({e}), e.g. 2"
                    ))
                },
            )?))),
            Err(_) => None,
        };
        let hang = std::env::var(HANG_BEFORE_COMMIT_ENV).ok();
        let panic = std::env::var(PANIC_BEFORE_COMMIT_ENV).ok();
        if hang.is_none() && panic.is_none() {
            return Ok(Environment {
                clock,
                failpoints: fail_store_requests.map(|left| Failpoints {
                    before_commit: None,
                    fail_store_requests: Some(left),
                }),
            });
        }
        let names = |target: &Option<String>, asset: &str, partition: &str| {
            target
                .as_ref()
                .is_some_and(|t| t == asset || *t == format!("{asset}[{partition}]"))
        };
        let hook: PauseHook = Arc::new(move |asset: &str, partition: &str| {
            if names(&panic, asset, partition) {
                panic!("test hook: {asset} [{partition}] panics before commit");
            }
            names(&hang, asset, partition).then(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "cairn: test hook: {asset} [{partition}] written, hanging before commit"
                );
                Duration::from_secs(3600)
            })
        });
        Ok(Environment {
            clock,
            failpoints: Some(Failpoints {
                before_commit: Some(hook),
                fail_store_requests,
            }),
        })
    }

    /// `ws` with the environment's clock and hooks.
    pub(crate) fn apply(&self, ws: Workspace) -> Workspace {
        let ws = match self.clock {
            Some(clock) => ws.with_clock(clock),
            None => ws,
        };
        match &self.failpoints {
            Some(f) => ws.with_failpoints(f.clone()),
            None => ws,
        }
    }
}

/// An instant given as RFC 3339 text; the error names it as `what` (e.g.
/// "--at `…`") and shows the expected shape. Every instant the CLI and
/// the server read from a person goes through here.
pub(crate) fn parse_instant(
    what: &str,
    text: &str,
) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("{what} is not an RFC 3339 time ({e}), e.g. 2024-06-01T00:00:00Z"))
}

/// `value` as pretty JSON and a newline on `out`. Every `--format json`
/// output of a command goes through here, from that command's
/// `render_json`.
pub(crate) fn print_json(value: &impl Serialize, out: &mut impl Write) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::Runtime(format!("JSON output: {e}")))?;
    writeln!(out, "{text}")?;
    Ok(())
}

/// The command line as run records keep it: `cairn ARGS...`.
pub(crate) fn command_line() -> String {
    let args: Vec<String> = std::env::args().collect();
    let mut line = String::from("cairn");
    for a in args.iter().skip(1) {
        line.push(' ');
        line.push_str(a);
    }
    line
}

/// `--jobs N`, or one more than the number of cores: a unit waiting on a
/// file read or write leaves its core idle unless another unit is ready.
/// Measured on the peers' DAG (N = 1,000, 2 cores): the cores were busy 93–94%
/// of a build with 2 jobs, 94–97% with 3 (4 interleaved runs each).
pub(crate) fn default_jobs(jobs: Option<u16>) -> usize {
    jobs.map(usize::from).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get() + 1)
            .unwrap_or(1)
    })
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
pub(crate) fn since(text: Option<&str>) -> Result<Option<chrono::DateTime<chrono::Utc>>, Failure> {
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

/// What the command tests share: a small project materialized for real in
/// a temporary folder, and [`testing::redact`] for what varies between runs.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::Path;

    use cairn_engine::{MaterializeOptions, PartitionFilter, Workspace};

    /// Reports nothing.
    struct Quiet;

    impl cairn_engine::Progress for Quiet {
        fn event(&self, _: cairn_engine::RunEvent<'_>) {}
    }

    /// `text` with what varies between runs replaced: UUID-shaped ids
    /// (run ids) by `<run>`, `YYYY-MM-DD HH:MM:SS` and the JSON form
    /// `YYYY-MM-DDTHH:MM:SS[.fraction]Z` by `<time>` and the temporary
    /// folder `dir` by `<dir>`.
    pub(crate) fn redact(text: &str, dir: &Path) -> String {
        // The folder as the engine may resolve it (e.g. through a symlink) first.
        let mut text = text.to_owned();
        if let Ok(real) = dir.canonicalize() {
            text = text.replace(&real.display().to_string(), "<dir>");
        }
        let text = text.replace(&dir.display().to_string(), "<dir>");
        let uuid = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
        let time = "0000-00-00 00:00:00";
        let json_time = "0000-00-00T00:00:00";
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(c) = rest.chars().next() {
            if shaped(rest, uuid) {
                out.push_str("<run>");
                rest = &rest[uuid.len()..];
            } else if shaped(rest, json_time) {
                out.push_str("<time>");
                rest = &rest[json_time.len()..];
                if let Some(fraction) = rest.strip_prefix('.') {
                    rest = fraction.trim_start_matches(|c: char| c.is_ascii_digit());
                }
                rest = rest.strip_prefix('Z').unwrap_or(rest);
            } else if shaped(rest, time) {
                out.push_str("<time>");
                rest = &rest[time.len()..];
            } else {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        out
    }

    /// Whether `text` starts with something shaped like `pattern`: `x` a
    /// hex digit, `0` a decimal digit, anything else itself.
    fn shaped(text: &str, pattern: &str) -> bool {
        let text = text.as_bytes();
        text.len() >= pattern.len()
            && pattern.bytes().zip(text).all(|(p, &t)| match p {
                b'x' => t.is_ascii_hexdigit(),
                b'0' => t.is_ascii_digit(),
                p => p == t,
            })
    }

    /// A shop's sales, three days of them, as a project:
    ///
    /// - `sales`, a source partitioned by day; `region_names`, a source;
    /// - `daily` (partitioned by day) and `running` (by day, each day
    ///   reading the day before of itself): totals per day;
    /// - `regions` (with checks) and `total` below it; `named` reads
    ///   `region_names` only; `big_regions` fails its error check.
    ///
    /// Materialized for the first two days, then day two's sales and
    /// `regions`' SQL are edited and `top` is added: every state at once.
    pub(crate) fn shop() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = dir.path();
        write(
            root,
            "cairn.toml",
            "[sources.sales]\n\
             path = \"data/sales\"\n\
             format = \"csv\"\n\
             description = \"Point-of-sale exports, one folder per day.\"\n\
             partitions = { type = \"daily\", start = \"2024-01-01\", end = \"2024-01-03\" }\n\
             \n\
             [sources.region_names]\n\
             path = \"data/region_names.csv\"\n",
        );
        write(
            root,
            "data/sales/date=2024-01-01/part.csv",
            "region,amount\neu,120\nus,80\n",
        );
        write(
            root,
            "data/sales/date=2024-01-02/part.csv",
            "region,amount\neu,45\n",
        );
        write(
            root,
            "data/sales/date=2024-01-03/part.csv",
            "region,amount\nus,300\n",
        );
        write(
            root,
            "data/region_names.csv",
            "region,name\neu,Europe\nus,United States\n",
        );
        write(
            root,
            "assets/daily.sql",
            "--- description = \"Sales and amount per day.\"\n\
             --- owner = \"analytics\"\n\
             --- tags = [\"daily\"]\n\
             --- checks = [\"not_null(day)\"]\n\
             --- [partitions]\n\
             --- type = \"daily\"\n\
             --- start = \"2024-01-01\"\n\
             --- end = \"2024-01-03\"\n\
             \n\
             select {{start_date}} as day, count(*) as sales, coalesce(sum(amount), 0) as amount\n\
             from sales\n",
        );
        write(
            root,
            "assets/running.sql",
            "--- description = \"Running total: each day adds its amount to the day before's.\"\n\
             --- [partitions]\n\
             --- type = \"daily\"\n\
             --- start = \"2024-01-01\"\n\
             --- end = \"2024-01-03\"\n\
             --- [upstream.running]\n\
             --- mapping = \"window\"\n\
             --- offset = -1\n\
             --- [columns]\n\
             --- day = \"DATE\"\n\
             --- total = \"BIGINT\"\n\
             \n\
             select d.day, d.amount + coalesce((select max(total) from running), 0) as total\n\
             from daily as d\n",
        );
        write(
            root,
            "assets/regions.sql",
            "--- description = \"Amount per region over all days.\"\n\
             --- owner = \"finance\"\n\
             --- checks = [\"unique(region)\", { check = \"row_count(3, 10)\", severity = \"warn\" }]\n\
             \n\
             select region, sum(amount) as amount, count(*) as sales\n\
             from sales\n\
             group by region\n\
             order by region\n",
        );
        write(
            root,
            "assets/total.sql",
            "select sum(amount) as amount from regions\n",
        );
        write(
            root,
            "assets/named.sql",
            "select region, upper(name) as name from region_names\n",
        );
        write(
            root,
            "assets/big_regions.sql",
            "--- checks = [\"expression(amount < 100)\"]\n\
             select region, amount from regions where amount > 50\n",
        );
        materialize(
            root,
            PartitionFilter::Range {
                from: "2024-01-01".to_owned(),
                to: "2024-01-02".to_owned(),
            },
        );
        write(
            root,
            "data/sales/date=2024-01-02/part.csv",
            "region,amount\neu,45\nus,5\n",
        );
        write(
            root,
            "assets/regions.sql",
            "--- description = \"Amount per region over all days.\"\n\
             --- owner = \"finance\"\n\
             --- checks = [\"unique(region)\", { check = \"row_count(3, 10)\", severity = \"warn\" }]\n\
             \n\
             select region, sum(amount) as amount, count(*) as sales\n\
             from sales\n\
             where amount > 0\n\
             group by region\n\
             order by region\n",
        );
        write(
            root,
            "assets/top.sql",
            "select region from regions order by amount desc limit 1\n",
        );
        dir
    }

    /// The workspace of the project in `dir`.
    pub(crate) fn open(dir: &Path) -> Workspace {
        Workspace::open(dir).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A multi-threaded runtime for the engine's async calls.
    pub(crate) fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Materializes everything in `root` (of the partitions in `partitions`).
    fn materialize(root: &Path, partitions: PartitionFilter) {
        let ws = open(root);
        let options = MaterializeOptions {
            selection: Vec::new(),
            force: false,
            // One at a time: materialization ids in commit order, the same every run.
            jobs: 1,
            command: "cairn materialize".to_owned(),
            partitions,
            backfill: None,
        };
        runtime()
            .block_on(ws.materialize(&options, &Quiet))
            .unwrap_or_else(|e| panic!("{e}"));
    }

    fn write(root: &Path, path: &str, text: &str) {
        let p = root.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(p, text).unwrap_or_else(|e| panic!("{e}"));
    }

    /// How long a build took varies from run to run: the committed
    /// versions' wall times in `s` (its own, its partitions') fixed at 35 ms.
    pub(crate) fn wall_fixed(s: &mut cairn_engine::AssetStatus) {
        if let Some(c) = &mut s.current {
            c.wall_ms = 35;
        }
        for u in s.partitions.iter_mut().flat_map(|p| p.list.iter_mut()) {
            if let Some(c) = &mut u.current {
                std::sync::Arc::make_mut(c).wall_ms = 35;
            }
        }
    }

    /// What a `render_json` wrote, as text.
    pub(crate) fn json(render: impl FnOnce(&mut Vec<u8>) -> Result<(), crate::Failure>) -> String {
        let mut out = Vec::new();
        if render(&mut out).is_err() {
            panic!("the JSON could not be written");
        }
        String::from_utf8(out).unwrap_or_else(|e| panic!("{e}"))
    }

    /// What `render` wrote, as text.
    pub(crate) fn rendered(render: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
        let mut out = Vec::new();
        render(&mut out).unwrap_or_else(|e| panic!("{e}"));
        String::from_utf8(out).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn redact_replaces_run_ids_times_and_the_folder() {
        let dir = Path::new("/tmp/.tmpAbC");
        assert_eq!(
            redact(
                "run 019a7c1e-4f2b-7d3e-9a1b-0c2d3e4f5a6b at 2024-05-01 12:34:56 UTC: /tmp/.tmpAbC/p — 2024-05-01",
                dir
            ),
            "run <run> at <time> UTC: <dir>/p — 2024-05-01"
        );
        assert_eq!(
            redact(
                r#"{"at": "2024-05-01T12:34:56.123456Z", "t": "2024-05-01T12:34:56Z"}"#,
                dir
            ),
            r#"{"at": "<time>", "t": "<time>"}"#
        );
    }
}
