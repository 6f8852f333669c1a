//! The command line, as clap sees it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The variable naming the server `--server` defaults to.
pub const SERVER_ENV: &str = "CAIRN_SERVER";

/// Cairn: declare tables, let Cairn work out what is stale, materialize it.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, about)]
pub struct Cli {
    /// The project folder (the one holding cairn.toml).
    #[arg(long, global = true, default_value = ".", value_name = "DIR")]
    pub project: PathBuf,

    /// Send `materialize` (and `--explain`), `backfill`, `status`, `show`
    /// and `lineage` to a running `cairn serve` instead of opening a
    /// project here: `http://HOST:PORT` or `HOST:PORT`. The output is the
    /// local command's; timings are the server's; runs go through its
    /// queue (Ctrl-C stops watching, not the run). A server with
    /// `[server.tokens]` needs the secret of one in CAIRN_TOKEN.
    #[arg(long, global = true, env = SERVER_ENV, value_name = "URL")]
    pub server: Option<String>,

    /// Whether `--project` was given on the command line (set after
    /// parsing: `--server` refuses it).
    #[arg(skip)]
    pub project_given: bool,

    /// Whether `--server` came from CAIRN_SERVER rather than the command
    /// line (set after parsing: `cairn serve` ignores the variable).
    #[arg(skip)]
    pub server_from_env: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Output of most commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// For programs.
    Json,
}

/// Output of `cairn query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QueryFormat {
    /// An aligned table.
    Table,
    /// CSV with a header row.
    Csv,
    /// A JSON array of objects.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Bring the selected assets up to date (stale upstreams are refreshed on the way).
    Materialize(MaterializeArgs),
    /// Show which assets are fresh, stale (and why), failed or never materialized.
    Status(StatusArgs),
    /// Run read-only SQL over the committed versions of all assets and sources.
    Query(QueryArgs),
    /// Show an asset's definition, versions, dependencies, files and history.
    Show(ShowArgs),
    /// Show the asset graph around an asset.
    Lineage(LineageArgs),
    /// Materialize a range of partitions, resumably (`--resume ID` after a crash or Ctrl-C).
    Backfill(BackfillArgs),
    /// Rerun the checks of committed versions without rematerializing.
    Check(CheckArgs),
    /// What assets cost (measured), optionally rolled up along lineage.
    Cost(CostArgs),
    /// Provenance of a version (run, code, exact upstream versions, back to the sources), or the audit log.
    Audit(AuditArgs),
    /// Remove files no committed version needs (uncommitted, or replaced and past retention).
    Gc(GcArgs),
    /// Evaluate every asset's [automation] at an instant and run what is due (without a server, in this process).
    Tick(TickArgs),
    /// Manage the catalog itself: `cairn catalog migrate --from URL --to URL`.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Serve the project: gRPC API (cairn.v1.Cairn, reflection, health) and HTTP /healthz on one port.
    Serve(ServeArgs),
}

/// `cairn audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The asset whose provenance to show.
    #[arg(required_unless_present = "log")]
    pub asset: Option<String>,
    /// The partition key (partitioned assets).
    #[arg(long, value_name = "KEY", default_value = "")]
    pub partition: String,
    /// A materialization id (from `cairn show`) instead of the current version.
    #[arg(long, value_name = "ID")]
    pub version: Option<i64>,
    /// Show the audit log instead: every state-changing action.
    #[arg(long, conflicts_with_all = ["asset", "version"])]
    pub log: bool,
    /// With --log: only entries in this window (e.g. 7d, 12h).
    #[arg(long, value_name = "AGE", requires = "log")]
    pub since: Option<String>,
    /// With --log: only entries by this user or principal.
    #[arg(long, value_name = "WHO", requires = "log")]
    pub who: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `cairn catalog ...`.
#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Copy every record of one catalog into a new, empty one (e.g. from
    /// SQLite to PostgreSQL), then point `[catalog] url` at it.
    Migrate(CatalogMigrateArgs),
}

/// `cairn catalog migrate`.
#[derive(Debug, Args)]
pub struct CatalogMigrateArgs {
    /// The catalog to copy (`sqlite://PATH`, relative to --project, or
    /// `postgres://...`).
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// The empty catalog to copy into (created and migrated if new; a
    /// PostgreSQL database must exist).
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `cairn serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (default: `[server] listen` in cairn.toml, else
    /// 127.0.0.1:7575; port 0 picks a free one). Without `[server.tokens]`
    /// only loopback addresses are allowed.
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,
}

/// `cairn tick`.
#[derive(Debug, Args)]
pub struct TickArgs {
    /// The instant to evaluate (RFC 3339), default now. Time is judged at it
    /// (which partitions exist, SLAs); cron instants up to it fire once.
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `cairn gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Only print what would be removed.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `cairn check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Assets whose checks to run (same syntax as materialize); none: all.
    #[arg(value_name = "SELECTION")]
    pub selection: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Sort order of `cairn cost`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CostSort {
    /// Dependency order.
    Name,
    /// Most expensive first.
    Cost,
    /// Most CPU first.
    Cpu,
    /// Most bytes read first.
    Read,
}

/// `cairn cost`.
#[derive(Debug, Args)]
pub struct CostArgs {
    /// Assets (same syntax as materialize); none: all.
    #[arg(value_name = "SELECTION")]
    pub selection: Vec<String>,
    /// Count every materialization in this window (e.g. 7d, 12h) instead of the current versions.
    #[arg(long, value_name = "AGE")]
    pub since: Option<String>,
    /// Include everything upstream each asset needs (each upstream counted once).
    #[arg(long)]
    pub rollup: bool,
    /// Sort order.
    #[arg(long, value_enum, default_value_t = CostSort::Name)]
    pub sort: CostSort,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `cairn backfill`.
#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// Assets to backfill (same syntax as materialize).
    #[arg(value_name = "SELECTION")]
    pub selection: Vec<String>,
    /// First partition (time key, inclusive), e.g. 2024-01-01.
    #[arg(long, value_name = "KEY")]
    pub from: Option<String>,
    /// Last partition (time key, inclusive).
    #[arg(long, value_name = "KEY")]
    pub to: Option<String>,
    /// Exactly these partitions, comma-separated (instead of --from/--to).
    #[arg(long, value_name = "LIST")]
    pub partitions: Option<String>,
    /// Rebuild partitions even when fresh.
    #[arg(long)]
    pub force: bool,
    /// Finish the backfill with this id: only what it has not committed yet.
    #[arg(long, value_name = "ID")]
    pub resume: Option<String>,
    /// How many partitions to compute at once (default: number of cores
    /// plus one; with --server, 1).
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// Bound the memory DataFusion holds at once in this run, every asset
    /// computing at the same time sharing it (e.g. 512MB, 2GiB); sorts,
    /// aggregates and joins spill to the temporary folder past it.
    /// Default: [engine] memory_limit, else unbounded.
    #[arg(long, value_name = "SIZE", value_parser = cairn_assets::parse_memory_size)]
    pub memory_limit: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `cairn materialize`.
#[derive(Debug, Args)]
pub struct MaterializeArgs {
    /// Assets to materialize: `name`, `+name` (with upstream), `name+` (with downstream), `*`.
    /// None: everything stale.
    #[arg(value_name = "SELECTION")]
    pub selection: Vec<String>,
    /// Rebuild the selected assets even when fresh.
    #[arg(long)]
    pub force: bool,
    /// Print what would be built and why, unit by unit; run and write nothing.
    #[arg(long, visible_alias = "dry-run")]
    pub explain: bool,
    /// How many assets to compute at once (default: number of cores plus
    /// one; with --server, 1).
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// Bound the memory DataFusion holds at once in this run, every asset
    /// computing at the same time sharing it (e.g. 512MB, 2GiB); sorts,
    /// aggregates and joins spill to the temporary folder past it.
    /// Default: [engine] memory_limit, else unbounded.
    #[arg(long, value_name = "SIZE", value_parser = cairn_assets::parse_memory_size)]
    pub memory_limit: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `cairn status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Assets to report on (same syntax as materialize); none: all.
    #[arg(value_name = "SELECTION")]
    pub selection: Vec<String>,
    /// Exit with 1 when any selected asset is not fresh, or, for one with a
    /// `[freshness]` SLA, past `fail_after`; or has a failed run or a
    /// failing check (a CI freshness gate).
    #[arg(long)]
    pub check: bool,
    /// List every partition of partitioned assets.
    #[arg(long)]
    pub partitions: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `cairn query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The SQL (a SELECT over asset and source names, and `cairn.*` metadata tables).
    pub sql: String,
    /// Read the versions current after this run id, or at this time (RFC 3339 or `YYYY-MM-DD HH:MM:SS`, UTC).
    #[arg(long, value_name = "RUN|TIME")]
    pub as_of: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = QueryFormat::Table)]
    pub format: QueryFormat,
}

/// `cairn show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The asset.
    pub asset: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `cairn lineage`.
#[derive(Debug, Args)]
pub struct LineageArgs {
    /// The asset (or source).
    pub asset: String,
    /// Only what it reads from.
    #[arg(long, conflicts_with = "downstream")]
    pub upstream: bool,
    /// Only what reads from it.
    #[arg(long)]
    pub downstream: bool,
    /// Column-level lineage of this output column, walked to the source columns.
    #[arg(long, value_name = "COLUMN", conflicts_with = "downstream")]
    pub column: Option<String>,
    /// With --column: how many assets deep to walk (default: to the sources).
    #[arg(long, value_name = "N", requires = "column")]
    pub depth: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

impl Command {
    /// `--memory-limit` of a command that runs assets (`materialize`,
    /// `backfill`), if given.
    pub fn memory_limit(&self) -> Option<u64> {
        match self {
            Command::Materialize(args) => args.memory_limit,
            Command::Backfill(args) => args.memory_limit,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
