//! Loading a project folder: `cairn.toml`, `sources/*.toml`, `assets/**/*.sql`.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use crate::checks::{CheckDef, Severity, parse_check};
use crate::config::{ProjectConfig, RawSource};
use crate::diagnostic::{Diagnostic, ProjectError, line_of_offset};
use crate::header::{AssetConfig, RawMapping, header_toml, parse_config};
use crate::names::{closest_name, is_valid_name, suggest_valid_name};
use crate::parse_cache::ParseCache;
use crate::partition_config::{
    ConfigText, check_default_mapping, resolve_mapping, resolve_partitions,
};
use crate::partitions::{Dimension, PartitionMapping, PartitionsDef};

/// A loaded, validated project: every upstream name resolves.
#[derive(Debug, Clone)]
pub struct Project {
    /// Absolute project root.
    pub root: PathBuf,
    /// `cairn.toml`.
    pub config: ProjectConfig,
    /// Sources by name.
    pub sources: BTreeMap<String, Source>,
    /// SQL assets by name.
    pub assets: BTreeMap<String, SqlAsset>,
}

/// File formats a source can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// Apache Parquet.
    Parquet,
    /// Newline-delimited JSON.
    Json,
}

impl SourceFormat {
    /// The file extension (without dot).
    pub fn extension(self) -> &'static str {
        match self {
            SourceFormat::Csv => "csv",
            SourceFormat::Parquet => "parquet",
            SourceFormat::Json => "json",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "csv" => Some(SourceFormat::Csv),
            "parquet" => Some(SourceFormat::Parquet),
            "json" | "ndjson" | "jsonl" => Some(SourceFormat::Json),
            _ => None,
        }
    }
}

/// A declared source: files Cairn reads but does not produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Its name, as referenced in SQL.
    pub name: String,
    /// Absolute path of the file or directory (for a source in an object
    /// store, the URL as a path; read [`Source::url`] instead).
    pub path: PathBuf,
    /// The object-store URL of a source that is not in the project folder
    /// (`s3://bucket/raw/orders.csv`, or a folder: `s3://bucket/raw/sales/`).
    pub url: Option<String>,
    /// The path as written in the declaration.
    pub declared_path: String,
    /// Its format.
    pub format: SourceFormat,
    /// Free text.
    pub description: Option<String>,
    /// Owner.
    pub owner: Option<String>,
    /// Declaring file, relative to the root.
    pub declared_in: PathBuf,
    /// Line of the declaration.
    pub line: usize,
    /// How its files are partitioned, if they are.
    pub partitions: Option<PartitionsDef>,
    /// How often a server checks it for changes (`poll = "1m"`), if at all.
    pub poll: Option<std::time::Duration>,
}

impl Source {
    /// Whether it is a folder in an object store (its URL ends with `/` or
    /// its last segment has no extension), not one object.
    pub fn is_remote_folder(&self) -> bool {
        self.url.as_deref().is_some_and(remote_is_folder)
    }
}

/// An asset defined by one SELECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlAsset {
    /// Its name (the file stem).
    pub name: String,
    /// Its `.sql` file, relative to the root.
    pub file: PathBuf,
    /// The file's text as written.
    pub sql: String,
    /// The normalized query (what the code version hashes).
    pub normalized_sql: String,
    /// Names of the assets and sources it reads, sorted.
    pub upstream: Vec<String>,
    /// The line of the first reference to each upstream name.
    pub reference_lines: BTreeMap<String, usize>,
    /// Free text.
    pub description: Option<String>,
    /// Owner.
    pub owner: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// The `[pools]` limit its builds count against, if any.
    pub pool: Option<String>,
    /// The sidecar config file, if one is used.
    pub config_file: Option<PathBuf>,
    /// How it is partitioned, if it is.
    pub partitions: Option<PartitionsDef>,
    /// Explicit partition mappings per upstream name (the rest use the
    /// default: identity between partitioned assets, all otherwise).
    pub mappings: BTreeMap<String, PartitionMapping>,
    /// Data quality checks, run before each commit.
    pub checks: Vec<CheckDef>,
    /// Whether rows added/removed versus the previous version are counted.
    pub count_changes: bool,
    /// Output columns declared in `[columns]`, if any.
    pub columns: Option<DeclaredColumns>,
    /// When it should run (`[automation]`), if it is automated.
    pub automation: Option<crate::automation::Automation>,
    /// Its freshness SLA (`[freshness]`), if any.
    pub freshness: Option<crate::automation::FreshnessSla>,
    /// Retries of transient failures (`[retries]`; one attempt by default).
    pub retries: crate::automation::RetryPolicy,
}

/// Output columns declared in an asset's `[columns]` table: the query must
/// produce exactly these, in this order. An asset that reads its own
/// earlier partitions uses them as the table it reads before any of its
/// partitions exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredColumns {
    /// The file declaring them.
    pub file: PathBuf,
    /// The columns in declaration order.
    pub columns: Vec<DeclaredColumn>,
}

/// One `name = "SQL TYPE"` line of `[columns]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredColumn {
    /// Column name.
    pub name: String,
    /// Its SQL type as written (e.g. `BIGINT`, `DECIMAL(12, 2)`).
    pub sql_type: String,
    /// The line declaring it.
    pub line: usize,
}

impl SqlAsset {
    /// Whether its SQL reads its own table (earlier partitions of itself).
    pub fn reads_itself(&self) -> bool {
        self.upstream.contains(&self.name)
    }

    /// The mapping used to read `upstream`.
    pub fn mapping(&self, upstream: &str) -> PartitionMapping {
        match self.mappings.get(upstream) {
            Some(m) => m.clone(),
            None if self.partitions.is_none() => PartitionMapping::All,
            None => PartitionMapping::Identity,
        }
    }

    /// The configuration that affects what the asset's rows are (and so
    /// belongs in its code version): partition shape and mappings, but not
    /// the partition range, which only says which partitions exist.
    pub fn output_config(&self) -> String {
        let mut out = String::new();
        if let Some(def) = &self.partitions {
            for d in &def.dimensions {
                match d {
                    Dimension::Time(t) => out.push_str(&format!(
                        "time:{}:{:?}:{}:{:?};",
                        t.name, t.granularity, t.timezone, t.column
                    )),
                    Dimension::Static(s) => {
                        out.push_str(&format!("static:{}:{:?};", s.name, s.column))
                    }
                }
            }
        }
        for (up, m) in &self.mappings {
            out.push_str(&format!("map:{up}:{m:?};"));
        }
        if let Some(declared) = &self.columns {
            for c in &declared.columns {
                out.push_str(&format!(
                    "column:{}:{};",
                    c.name,
                    c.sql_type.to_ascii_uppercase()
                ));
            }
        }
        out
    }
}

/// A `[upstream.NAME]` table waiting for every asset to be loaded.
struct PendingMappings {
    text: String,
    file: PathBuf,
    mappings: BTreeMap<String, RawMapping>,
}

const PROJECT_FILE: &str = "cairn.toml";

impl Project {
    /// Loads and validates the project in `dir`. All problems found are
    /// reported together.
    pub fn load(dir: &Path) -> Result<Project, ProjectError> {
        let root = dir.canonicalize().map_err(|e| {
            Diagnostic::new(dir, None, format!("cannot open project directory: {e}"))
                .with_hint("pass the folder holding cairn.toml with --project DIR")
        })?;
        let config_path = root.join(PROJECT_FILE);
        let config_text = fs::read_to_string(&config_path).map_err(|e| {
            Diagnostic::new(
                PROJECT_FILE,
                None,
                format!("cannot read {}: {e}", config_path.display()),
            )
            .with_hint(
                "run cairn in a project folder (one with a cairn.toml), or pass --project DIR",
            )
        })?;
        let config: ProjectConfig = toml::from_str(&config_text).map_err(|e| {
            let line = e.span().map(|s| line_of_offset(&config_text, s.start));
            Diagnostic::new(PROJECT_FILE, line, format!("invalid configuration: {}", e.message()))
                .with_hint("known sections are [storage] url, [catalog] url, [engine] url/query_timeout_seconds/memory_limit, [cost] rates, [retention] days, [openlineage] path/url/endpoint/api_key_env/timeout_seconds/retries/queue_size/namespace, [server] listen/tokens/max_concurrent_runs/shutdown_grace_seconds/tick_seconds, [pools] NAME = limit, [[alerts]] url/format/on and [sources.NAME] path/format/partitions/description/owner/poll")
        })?;

        let mut diagnostics = limits_problems(&config);
        if let Some((key, offset)) = config.storage.credential_key() {
            diagnostics.push(
                Diagnostic::new(
                    PROJECT_FILE,
                    Some(line_of_offset(&config_text, offset)),
                    format!("[storage] `{key}`: credentials are never read from cairn.toml"),
                )
                .with_hint("remove it and set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN if any) in the environment"),
            );
        }
        diagnostics.extend(alert_problems(&config, &config_text));
        diagnostics.extend(openlineage_problems(&config, &config_text));
        diagnostics.extend(engine_problems(&config, &config_text));
        let mut sources = BTreeMap::new();
        for (name, raw) in &config.sources {
            match resolve_source(&root, name, raw, Path::new(PROJECT_FILE), &config_text) {
                Ok(s) => {
                    sources.insert(name.clone(), s);
                }
                Err(d) => diagnostics.push(d),
            }
        }
        load_source_files(&root, &mut sources, &mut diagnostics);

        let mut pending: BTreeMap<String, PendingMappings> = BTreeMap::new();
        // The cache is read while the asset files are listed.
        let (cache, files) = std::thread::scope(|scope| {
            let cache = scope.spawn(|| ParseCache::open(&root));
            let mut files = Vec::new();
            collect_sql_files(&root.join("assets"), &mut files, &mut diagnostics, &root);
            let cache = cache
                .join()
                .unwrap_or_else(|payload| std::panic::resume_unwind(payload));
            (cache, files)
        });
        let loaded = load_assets(&root, &files, &config.pools, &cache);
        // Each name is kept from its first file; a later file of the same
        // name, or an asset named like a source, is an error at its place.
        let count = loaded.iter().map(Vec::len).sum();
        let mut clashes: Vec<Option<Diagnostic>> = Vec::with_capacity(count);
        {
            let mut first: HashMap<&str, &Path> = HashMap::with_capacity(count);
            for (rel, result) in loaded.iter().flatten() {
                let Ok((asset, _)) = result else {
                    clashes.push(None);
                    continue;
                };
                let clash = if let Some(source) = sources.get(&asset.name) {
                    Some(
                        Diagnostic::new(
                            rel,
                            None,
                            format!("asset `{}` has the same name as a source", asset.name),
                        )
                        .with_hint(format!(
                            "source `{}` is declared at {}:{}; rename one of them",
                            source.name,
                            source.declared_in.display(),
                            source.line
                        )),
                    )
                } else if let Some(first) = first.get(asset.name.as_str()) {
                    Some(
                        Diagnostic::new(
                            rel,
                            None,
                            format!("duplicate asset name `{}`", asset.name),
                        )
                        .with_hint(format!(
                            "{} defines it too; asset names are file stems and must be unique",
                            first.display()
                        )),
                    )
                } else {
                    first.insert(&asset.name, &asset.file);
                    None
                };
                clashes.push(clash);
            }
        }
        let mut kept = Vec::with_capacity(count);
        for ((_, result), clash) in loaded.into_iter().flatten().zip(clashes) {
            match (result, clash) {
                (Ok(_), Some(d)) | (Err(d), _) => diagnostics.push(d),
                (Ok((asset, mappings)), None) => {
                    if let Some(m) = mappings {
                        pending.insert(asset.name.clone(), m);
                    }
                    kept.push((asset.name.clone(), asset));
                }
            }
        }
        // Built at once from the (mostly sorted) list: inserting one by one
        // moved large values around.
        let mut assets: BTreeMap<String, SqlAsset> = kept.into_iter().collect();

        for asset in assets.values() {
            for (name, &line) in &asset.reference_lines {
                if assets.contains_key(name) || sources.contains_key(name) {
                    continue;
                }
                let known = assets.keys().chain(sources.keys()).map(String::as_str);
                let hint = match closest_name(name, known) {
                    Some(close) => format!("did you mean `{close}`?"),
                    None => format!(
                        "declare it as a source in cairn.toml ([sources.{name}] path = \"...\") or add assets/{name}.sql"
                    ),
                };
                diagnostics.push(
                    Diagnostic::new(&asset.file, Some(line), format!("unknown table `{name}`"))
                        .with_hint(hint),
                );
            }
        }

        if diagnostics.is_empty() {
            resolve_all_mappings(&mut assets, &sources, &pending, &mut diagnostics);
        }

        if diagnostics.is_empty() {
            // Only a valid project writes anything (the cache) on disk.
            cache.save();
            Ok(Project {
                root,
                config,
                sources,
                assets,
            })
        } else {
            Err(ProjectError { diagnostics })
        }
    }

    /// The asset or source file that defines `name`, with its line.
    pub fn location_of(&self, name: &str) -> Option<(PathBuf, usize)> {
        if let Some(a) = self.assets.get(name) {
            return Some((a.file.clone(), 1));
        }
        self.sources
            .get(name)
            .map(|s| (s.declared_in.clone(), s.line))
    }
}

/// Whether a source URL names a folder (a prefix: it ends with `/`, or its
/// last segment has no extension) rather than one object.
fn remote_is_folder(url: &str) -> bool {
    let last = url.rsplit('/').next().unwrap_or_default();
    url.ends_with('/') || !last.contains('.')
}

fn resolve_source(
    root: &Path,
    name: &str,
    raw: &RawSource,
    declared_in: &Path,
    text: &str,
) -> Result<Source, Diagnostic> {
    let line = line_of_offset(text, raw.path.span().start);
    if !is_valid_name(name) {
        return Err(Diagnostic::new(
            declared_in,
            Some(line),
            format!("invalid source name `{name}`"),
        )
        .with_hint(format!(
            "names are lowercase SQL identifiers; use `{}`",
            suggest_valid_name(name)
        )));
    }
    let declared_path = raw.path.get_ref().clone();
    let url = match declared_path.split_once("://") {
        Some(("s3" | "gs" | "az", rest)) if rest.contains('/') && !rest.starts_with('/') => {
            Some(declared_path.clone())
        }
        Some((scheme, _)) => {
            return Err(Diagnostic::new(
                declared_in,
                Some(line),
                format!("source `{name}`: `{declared_path}` is not a path or an object-store URL Cairn reads ({scheme}://)"),
            )
            .with_hint("give a path relative to the project folder (data/orders.csv) or s3://bucket/key, gs://bucket/key, az://container/key (a folder ends with /)"));
        }
        None => None,
    };
    let path = match &url {
        Some(url) => PathBuf::from(url),
        None => root.join(&declared_path),
    };
    let format = match &raw.format {
        Some(f) => SourceFormat::parse(f.get_ref()).ok_or_else(|| {
            Diagnostic::new(
                declared_in,
                Some(line_of_offset(text, f.span().start)),
                format!("source `{name}`: unknown format `{}`", f.get_ref()),
            )
            .with_hint("use format = \"csv\", \"parquet\" or \"json\"")
        })?,
        None => path
            .extension()
            .and_then(|e| e.to_str())
            .and_then(SourceFormat::parse)
            .ok_or_else(|| {
                Diagnostic::new(
                    declared_in,
                    Some(line),
                    format!("source `{name}`: cannot tell the format of `{declared_path}`"),
                )
                .with_hint("use a .csv, .parquet or .json file, or set format = \"csv\" | \"parquet\" | \"json\"")
            })?,
    };
    // A remote source is looked for when it is read (one request per
    // command, not at every load).
    if url.is_none() && !path.exists() {
        return Err(Diagnostic::new(
            declared_in,
            Some(line),
            format!("source `{name}`: `{declared_path}` does not exist"),
        )
        .with_hint(format!(
            "paths are relative to the project folder {}",
            root.display()
        )));
    }
    let partitions = raw
        .partitions
        .as_ref()
        .map(|p| {
            resolve_partitions(
                p,
                &ConfigText {
                    text,
                    file: declared_in,
                },
            )
        })
        .transpose()?;
    let is_folder = match &url {
        Some(url) => remote_is_folder(url),
        None => path.is_dir(),
    };
    if partitions.is_some() && !is_folder {
        return Err(Diagnostic::new(declared_in, Some(line), format!("partitioned source `{name}` must be a folder"))
            .with_hint("put the files of partition KEY under <path>/<dimension>=KEY/, e.g. data/orders/date=2024-05-01/part.csv (in an object store, end the URL with /)"));
    }
    Ok(Source {
        name: name.to_owned(),
        path,
        url,
        declared_path,
        format,
        description: raw.description.clone(),
        owner: raw.owner.clone(),
        declared_in: declared_in.to_path_buf(),
        line,
        partitions,
        poll: raw
            .poll
            .as_ref()
            .map(|p| {
                crate::automation::parse_duration(p.get_ref()).map_err(|e| {
                    Diagnostic::new(
                        declared_in,
                        Some(line_of_offset(text, p.span().start)),
                        format!("source `{name}`: poll: {e}"),
                    )
                    .with_hint("e.g. poll = \"1m\"")
                })
            })
            .transpose()?,
    })
}

/// The partitioning of an asset or source by name.
fn partitions_of<'a>(
    name: &str,
    assets: &'a BTreeMap<String, SqlAsset>,
    sources: &'a BTreeMap<String, Source>,
) -> Option<&'a PartitionsDef> {
    assets
        .get(name)
        .and_then(|a| a.partitions.as_ref())
        .or_else(|| sources.get(name).and_then(|s| s.partitions.as_ref()))
}

/// Checks explicit mappings and the default ones that cannot work.
fn resolve_all_mappings(
    assets: &mut BTreeMap<String, SqlAsset>,
    sources: &BTreeMap<String, Source>,
    pending: &BTreeMap<String, PendingMappings>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    // Each asset's mappings, in the order of `assets`.
    let mut resolved: Vec<BTreeMap<String, PartitionMapping>> = Vec::with_capacity(assets.len());
    for (name, asset) in assets.iter() {
        let down = asset.partitions.as_ref();
        let mut mine = BTreeMap::new();
        if let Some(p) = pending.get(name) {
            let cx = ConfigText {
                text: &p.text,
                file: &p.file,
            };
            for (up, raw) in &p.mappings {
                if !asset.upstream.contains(up) {
                    diagnostics.push(
                        Diagnostic::new(
                            &p.file,
                            Some(line_of_offset(&p.text, raw.mapping.span().start)),
                            format!("mapping for `{up}`, which this asset does not read"),
                        )
                        .with_hint(format!("its upstreams are: {}", asset.upstream.join(", "))),
                    );
                    continue;
                }
                match resolve_mapping(up, raw, down, partitions_of(up, assets, sources), &cx) {
                    Ok(m) => {
                        mine.insert(up.clone(), m);
                    }
                    Err(d) => diagnostics.push(d),
                }
            }
        }
        if asset.reads_itself()
            && let Some(problem) = self_read_problem(asset, mine.get(name))
        {
            diagnostics.push(problem);
        }
        if let Some(down) = down {
            for up in &asset.upstream {
                if mine.contains_key(up) || up == name {
                    continue;
                }
                if let Some(up_def) = partitions_of(up, assets, sources)
                    && let Some(problem) = check_default_mapping(up, down, up_def)
                {
                    diagnostics.push(Diagnostic::new(
                        &asset.file,
                        asset.reference_lines.get(up).copied(),
                        problem,
                    ));
                }
            }
        }
        resolved.push(mine);
    }
    for (asset, mappings) in assets.values_mut().zip(resolved) {
        asset.mappings = mappings;
    }
}

/// An asset may read only its own *earlier* partitions: it must be time
/// partitioned and map itself with a window that ends before the partition
/// being built. Anything else is a cycle.
fn self_read_problem(asset: &SqlAsset, mapping: Option<&PartitionMapping>) -> Option<Diagnostic> {
    let name = &asset.name;
    let line = asset.reference_lines.get(name).copied();
    let fix = format!(
        "declare [upstream.{name}] with mapping = \"window\" and offset = -1 (the previous partition; add lag = N to read N more before it)"
    );
    let at = |message: String| Diagnostic::new(&asset.file, line, message);
    let time_partitioned = asset
        .partitions
        .as_ref()
        .is_some_and(|p| p.time().is_some());
    if !time_partitioned {
        return Some(
            at(format!(
                "`{name}` reads its own table; only a time-partitioned asset may read itself, each partition reading earlier ones"
            ))
            .with_hint(format!(
                "remove the reference to `{name}`, or partition the asset by time and {fix}"
            )),
        );
    }
    match mapping {
        Some(PartitionMapping::Window { offset, .. }) if *offset < 0 => None,
        Some(PartitionMapping::Window { offset, .. }) => Some(
            at(format!(
                "`{name}` reads its own partitions with offset = {offset}, so a partition would read itself or a later one (a cycle)"
            ))
            .with_hint(format!("use a negative offset: {fix}")),
        ),
        _ => Some(
            at(format!(
                "`{name}` reads its own table without saying which earlier partitions (reading the same partition would be a cycle)"
            ))
            .with_hint(fix),
        ),
    }
}

/// Sources declared one per file in `sources/NAME.toml`.
fn load_source_files(
    root: &Path,
    sources: &mut BTreeMap<String, Source>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let Ok(entries) = fs::read_dir(root.join("sources")) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    for path in paths {
        let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                diagnostics.push(Diagnostic::new(&rel, None, format!("cannot read: {e}")));
                continue;
            }
        };
        let raw: RawSource = match toml::from_str(&text) {
            Ok(r) => r,
            Err(e) => {
                let line = e.span().map(|s| line_of_offset(&text, s.start));
                diagnostics.push(
                    Diagnostic::new(&rel, line, format!("invalid source declaration: {}", e.message()))
                        .with_hint("a source file holds path = \"...\" and optionally format, description, owner"),
                );
                continue;
            }
        };
        if let Some(first) = sources.get(&name) {
            diagnostics.push(
                Diagnostic::new(&rel, Some(1), format!("duplicate source name `{name}`"))
                    .with_hint(format!(
                        "it is also declared at {}:{}",
                        first.declared_in.display(),
                        first.line
                    )),
            );
            continue;
        }
        match resolve_source(root, &name, &raw, &rel, &text) {
            Ok(s) => {
                sources.insert(name, s);
            }
            Err(d) => diagnostics.push(d),
        }
    }
}

/// An asset file found in `assets/`.
struct AssetFile {
    path: PathBuf,
    /// Whether a sidecar `.toml` of the same stem lies beside it (seen in
    /// the listing: no system call per file).
    has_sidecar: bool,
}

/// Adds the `.sql` files under `dir` (in subfolders too) to `out`, in path
/// order.
fn collect_sql_files(
    dir: &Path,
    out: &mut Vec<AssetFile>,
    diagnostics: &mut Vec<Diagnostic>,
    root: &Path,
) {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            let rel = dir.strip_prefix(root).unwrap_or(dir);
            diagnostics.push(Diagnostic::new(
                rel,
                None,
                format!("cannot list directory: {e}"),
            ));
            return;
        }
    };
    // Sorted by name in each folder: the files come out in path order.
    let mut entries: Vec<(std::ffi::OsString, fs::DirEntry)> =
        entries.flatten().map(|e| (e.file_name(), e)).collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let listed = |name: &std::ffi::OsStr| {
        entries
            .binary_search_by(|e| e.0.as_os_str().cmp(name))
            .is_ok()
    };
    for (_, entry) in &entries {
        let path = entry.path();
        // The entry's own type costs no system call; a link is followed.
        let is_dir = match entry.file_type() {
            Ok(t) if !t.is_symlink() => t.is_dir(),
            _ => path.is_dir(),
        };
        if is_dir {
            collect_sql_files(&path, out, diagnostics, root);
        } else if path.extension().is_some_and(|e| e == "sql") {
            let has_sidecar = listed(path.with_extension("toml").file_name().unwrap_or_default());
            out.push(AssetFile { path, has_sidecar });
        }
    }
}

/// What loading one asset file gave.
type LoadedAsset = Result<(SqlAsset, Option<PendingMappings>), Diagnostic>;

/// Loads the asset `files` (absolute, sorted) on every core, keeping their
/// order: each with its path relative to `root`, in consecutive runs (one
/// per thread, left as they are: an asset is large to move).
fn load_assets(
    root: &Path,
    files: &[AssetFile],
    pools: &BTreeMap<String, u32>,
    cache: &ParseCache,
) -> Vec<Vec<(PathBuf, LoadedAsset)>> {
    let load = |file: &AssetFile| {
        let rel = file
            .path
            .strip_prefix(root)
            .unwrap_or(&file.path)
            .to_path_buf();
        let loaded = load_asset(file, &rel, pools, cache);
        (rel, loaded)
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Below a few hundred files a thread costs more than it saves.
    if threads < 2 || files.len() < 256 {
        return vec![files.iter().map(load).collect()];
    }
    let chunk = files.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(load).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                // A loader thread's panic goes on in this thread.
                handle
                    .join()
                    .unwrap_or_else(|payload| std::panic::resume_unwind(payload))
            })
            .collect()
    })
}

fn load_asset(
    file: &AssetFile,
    rel: &Path,
    pools: &BTreeMap<String, u32>,
    cache: &ParseCache,
) -> LoadedAsset {
    let (path, has_sidecar) = (file.path.as_path(), file.has_sidecar);
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    if !is_valid_name(stem) {
        return Err(Diagnostic::new(rel, None, format!("invalid asset name `{stem}`")).with_hint(format!(
            "the file stem is the asset name and must be a lowercase SQL identifier; rename it to `{}.sql`",
            suggest_valid_name(stem)
        )));
    }
    let sql = fs::read_to_string(path)
        .map_err(|e| Diagnostic::new(rel, None, format!("cannot read: {e}")))?;
    let parsed = cache.parse(&sql, rel)?;

    let header = header_toml(&sql);
    let sidecar_path = path.with_extension("toml");
    let sidecar_rel = rel.with_extension("toml");
    let (config, config_text, config_file) = match (header, has_sidecar) {
        (Some(_), true) => {
            return Err(Diagnostic::new(
                rel,
                Some(1),
                "asset config is given both in the file header and in a sidecar",
            )
            .with_hint(format!(
                "keep one: the `---` header here or {}",
                sidecar_rel.display()
            )));
        }
        (Some(toml_text), false) => (parse_config(&toml_text, rel)?, toml_text, rel.to_path_buf()),
        (None, true) => {
            let text = fs::read_to_string(&sidecar_path)
                .map_err(|e| Diagnostic::new(&sidecar_rel, None, format!("cannot read: {e}")))?;
            (
                parse_config(&text, &sidecar_rel)?,
                text,
                sidecar_rel.clone(),
            )
        }
        (None, false) => (AssetConfig::default(), String::new(), rel.to_path_buf()),
    };
    let cx = ConfigText {
        text: &config_text,
        file: &config_file,
    };
    let partitions = config
        .partitions
        .as_ref()
        .map(|p| resolve_partitions(p, &cx))
        .transpose()?;
    check_placeholders(&parsed.placeholders, partitions.as_ref(), rel)?;
    let checks = resolve_checks(&config.checks, &cx)?;
    if let Some(pool) = &config.pool
        && !pools.contains_key(pool.get_ref())
    {
        let name = pool.get_ref();
        let hint = match closest_name(name, pools.keys().map(String::as_str)) {
            Some(close) => format!("did you mean `{close}`?"),
            None => format!(
                "declare it in cairn.toml: [pools] {name} = 2 (how many of its builds run at once)"
            ),
        };
        return Err(cx
            .at(pool, format!("unknown pool `{name}`"))
            .with_hint(hint));
    }
    let pending = (!config.upstream.is_empty()).then(|| PendingMappings {
        text: config_text.clone(),
        file: config_file.clone(),
        mappings: config.upstream.clone(),
    });
    Ok((
        SqlAsset {
            name: stem.to_owned(),
            file: rel.to_path_buf(),
            normalized_sql: parsed.normalized,
            upstream: parsed.tables.iter().map(|(name, _)| name.clone()).collect(),
            reference_lines: parsed.tables.into_iter().collect(),
            sql,
            description: config.description,
            owner: config.owner,
            tags: config.tags,
            pool: config.pool.as_ref().map(|p| p.get_ref().clone()),
            config_file: has_sidecar.then_some(sidecar_rel),
            partitions,
            mappings: BTreeMap::new(),
            checks,
            count_changes: config.count_row_changes.unwrap_or(true),
            columns: declared_columns(config.columns.as_ref(), &cx)?,
            automation: config
                .automation
                .as_ref()
                .map(|a| crate::automation::resolve_automation(a, &cx))
                .transpose()?,
            freshness: config
                .freshness
                .as_ref()
                .map(|f| crate::automation::resolve_freshness(f, &cx))
                .transpose()?,
            retries: config
                .retries
                .as_ref()
                .map(|r| crate::automation::resolve_retries(r, &cx))
                .transpose()?
                .unwrap_or_default(),
        },
        pending,
    ))
}

/// Limits of zero would stop everything: refused with the fix.
fn limits_problems(config: &ProjectConfig) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    if config.server.tick_seconds == 0 {
        problems.push(
            Diagnostic::new(
                PROJECT_FILE,
                None,
                "[server] tick_seconds = 0 would tick without pause",
            )
            .with_hint("set it to 1 or more (default 30)"),
        );
    }
    if config.server.max_concurrent_runs == 0 {
        problems.push(
            Diagnostic::new(
                PROJECT_FILE,
                None,
                "[server] max_concurrent_runs = 0 would never run anything",
            )
            .with_hint("set it to 1 or more (default 4)"),
        );
    }
    for (name, limit) in &config.pools {
        if *limit == 0 {
            problems.push(
                Diagnostic::new(
                    PROJECT_FILE,
                    None,
                    format!("[pools] {name} = 0 would never build its assets"),
                )
                .with_hint("set it to 1 or more"),
            );
        }
    }
    problems
}

/// `[[alerts]]` URLs that are not http(s): not a webhook.
fn alert_problems(config: &ProjectConfig, text: &str) -> Vec<Diagnostic> {
    config
        .alerts
        .iter()
        .filter_map(|alert| {
            http_url_problem(
                "[[alerts]] url",
                &alert.url,
                text,
                "alerts are POSTed to a webhook: url = \"https://hooks.slack.com/services/...\"",
            )
        })
        .collect()
}

/// `[openlineage]` with nowhere to send events, or a `url` this build
/// cannot POST to.
fn openlineage_problems(config: &ProjectConfig, text: &str) -> Vec<Diagnostic> {
    let Some(ol) = &config.openlineage else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    let line = text
        .find("[openlineage]")
        .map(|offset| line_of_offset(text, offset));
    if ol.path.is_none() && ol.url.is_none() {
        problems.push(
            Diagnostic::new(
                PROJECT_FILE,
                line,
                "[openlineage] says neither where to write events (path) nor where to send them (url)",
            )
            .with_hint("add path = \"lineage/events.jsonl\" and/or url = \"http://127.0.0.1:5000\" (e.g. Marquez)"),
        );
    }
    if let Some(url) = &ol.url {
        problems.extend(http_url_problem(
            "[openlineage] url",
            url,
            text,
            "events are POSTed to an OpenLineage HTTP receiver: url = \"http://HOST:PORT\"",
        ));
    }
    if ol.timeout_seconds == 0 || ol.queue_size == 0 {
        problems.push(
            Diagnostic::new(
                PROJECT_FILE,
                line,
                "[openlineage] timeout_seconds and queue_size must be 1 or more",
            )
            .with_hint("leave them out for the defaults (5 seconds, 10000 events)"),
        );
    }
    problems
}

/// `[engine] url` that does not name a Ballista scheduler (`df://HOST:PORT`).
fn engine_problems(config: &ProjectConfig, text: &str) -> Option<Diagnostic> {
    // A bad value of `key`, at the line that writes it.
    let at_key = |key: &str, message: String, hint: &str| {
        let line = text.find(key).map(|offset| line_of_offset(text, offset));
        Some(Diagnostic::new(PROJECT_FILE, line, message).with_hint(hint))
    };
    if config.engine.query_timeout_seconds == Some(0) {
        return at_key(
            "query_timeout_seconds",
            "[engine] query_timeout_seconds must be 1 or more".to_owned(),
            "leave it out for the default (3600 seconds)",
        );
    }
    if let Some(limit) = &config.engine.memory_limit
        && let Err(reason) = crate::config::parse_memory_size(limit)
    {
        return at_key(
            "memory_limit",
            format!("[engine] memory_limit {reason}"),
            "memory_limit = \"512MB\" bounds what DataFusion holds at once (it spills past it); leave it out for no bound",
        );
    }
    let url = config.engine.url.as_deref()?;
    let reason = crate::config::EngineConfig::scheduler(url).err()?;
    let line = text
        .find(&format!("\"{url}\""))
        .or_else(|| text.find("[engine]"))
        .map(|offset| line_of_offset(text, offset));
    Some(
        Diagnostic::new(PROJECT_FILE, line, format!("[engine] url {reason}"))
            .with_hint("queries run on a Ballista cluster with url = \"df://HOST:50050\" (its scheduler); leave [engine] out to run them in this process"),
    )
}

/// An URL to POST to that is not http(s) (`what` names the key).
fn http_url_problem(what: &str, url: &str, text: &str, hint: &str) -> Option<Diagnostic> {
    let trimmed = url.trim();
    let line = text
        .find(&format!("\"{url}\""))
        .map(|offset| line_of_offset(text, offset));
    let scheme = trimmed
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("http" | "https") => None,
        _ => Some(
            Diagnostic::new(
                PROJECT_FILE,
                line,
                format!("{what} `{trimmed}` is not an http:// or https:// URL"),
            )
            .with_hint(hint),
        ),
    }
}

/// `[columns]`: `name = "SQL TYPE"` pairs, kept in the order written.
/// Types are checked by the engine (it owns the SQL type system).
fn declared_columns(
    raw: Option<&toml::Spanned<BTreeMap<String, toml::Spanned<String>>>>,
    cx: &ConfigText<'_>,
) -> Result<Option<DeclaredColumns>, Diagnostic> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let mut columns: Vec<(usize, String, String)> = Vec::new();
    for (name, ty) in raw.get_ref() {
        if !is_valid_name(name) {
            return Err(cx
                .at(ty, format!("invalid column name `{name}` in [columns]"))
                .with_hint(
                    "column names are lowercase SQL identifiers, as the query's output names them",
                ));
        }
        if ty.get_ref().trim().is_empty() {
            return Err(cx
                .at(ty, format!("column `{name}` has no type"))
                .with_hint("write a SQL type, e.g. `total = \"BIGINT\"` or `day = \"DATE\"`"));
        }
        columns.push((
            ty.span().start,
            name.clone(),
            ty.get_ref().trim().to_owned(),
        ));
    }
    if columns.is_empty() {
        return Err(cx
            .at(raw, "[columns] is empty")
            .with_hint("list every output column as `name = \"SQL TYPE\"`, or remove [columns]"));
    }
    columns.sort_by_key(|c| c.0);
    Ok(Some(DeclaredColumns {
        file: cx.file.to_path_buf(),
        columns: columns
            .into_iter()
            .map(|(offset, name, sql_type)| DeclaredColumn {
                name,
                sql_type,
                line: line_of_offset(cx.text, offset),
            })
            .collect(),
    }))
}

/// `checks = [...]`: each a string, or `{ check = "...", severity = "warn" }`.
fn resolve_checks(
    raw: &[toml::Spanned<toml::Value>],
    cx: &ConfigText<'_>,
) -> Result<Vec<CheckDef>, Diagnostic> {
    let mut out: Vec<CheckDef> = Vec::new();
    for item in raw {
        let line = line_of_offset(cx.text, item.span().start);
        let at = |m: String| Diagnostic::new(cx.file, Some(line), m);
        let (text, severity) = match item.get_ref() {
            toml::Value::String(s) => (s.clone(), Severity::Error),
            toml::Value::Table(t) => {
                for key in t.keys() {
                    if key != "check" && key != "severity" {
                        return Err(at(format!("unknown key `{key}` in a check"))
                            .with_hint("a check table has `check` and `severity`"));
                    }
                }
                let Some(toml::Value::String(text)) = t.get("check") else {
                    return Err(at("a check table needs `check = \"...\"`".to_owned()));
                };
                let severity = match t.get("severity") {
                    None => Severity::Error,
                    Some(toml::Value::String(s)) if s == "error" => Severity::Error,
                    Some(toml::Value::String(s)) if s == "warn" => Severity::Warn,
                    Some(other) => {
                        return Err(at(format!("unknown severity {other}"))
                            .with_hint("use severity = \"warn\" or \"error\""));
                    }
                };
                (text.clone(), severity)
            }
            other => {
                return Err(at(format!("a check is a string or a table, found {}", other.type_str()))
                    .with_hint("e.g. checks = [\"not_null(id)\", { check = \"row_count(1, 1000)\", severity = \"warn\" }]"));
            }
        };
        let check = parse_check(&text, severity, line)
            .map_err(|e| at(format!("invalid check `{text}`: {e}")))?;
        if out.iter().any(|c| c.name == check.name) {
            return Err(at(format!("check `{}` is declared twice", check.name)));
        }
        out.push(check);
    }
    Ok(out)
}

/// Placeholders must name something the asset's partitions provide.
fn check_placeholders(
    used: &[(String, usize)],
    partitions: Option<&PartitionsDef>,
    rel: &Path,
) -> Result<(), Diagnostic> {
    let Some((first, line)) = used.first() else {
        return Ok(());
    };
    let Some(def) = partitions else {
        return Err(Diagnostic::new(
            rel,
            Some(*line),
            format!("`{{{{{first}}}}}` used, but this asset is not partitioned"),
        )
        .with_hint("declare [partitions] in the asset's header, or remove the placeholder"));
    };
    let mut known: Vec<String> = vec!["partition_key".to_owned()];
    for d in &def.dimensions {
        match d {
            Dimension::Time(_) => {
                known.extend(["start", "end", "start_date", "end_date"].map(String::from))
            }
            Dimension::Static(s) => known.push(s.name.clone()),
        }
    }
    for (name, line) in used {
        if !known.contains(name) {
            let hint = closest_name(name, known.iter().map(String::as_str))
                .map(|c| format!("did you mean {{{{{c}}}}}?"))
                .unwrap_or_else(|| {
                    format!(
                        "available: {}",
                        known
                            .iter()
                            .map(|k| format!("{{{{{k}}}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                });
            return Err(Diagnostic::new(
                rel,
                Some(*line),
                format!("unknown placeholder `{{{{{name}}}}}`"),
            )
            .with_hint(hint));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    fn write(root: &Path, path: &str, text: &str) {
        let path = root.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn sidecars_are_found_beside_their_asset_in_any_folder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "cairn.toml", "");
        write(root, "assets/a.sql", "select 1 as x");
        write(root, "assets/a.toml", "description = \"from the sidecar\"");
        write(root, "assets/marts/b.sql", "select x from a");
        write(root, "assets/marts/b.toml", "owner = \"finance\"");
        // A sidecar of another folder's asset is not this one's.
        write(root, "assets/c.sql", "select x from a");
        write(root, "assets/marts/c.toml", "owner = \"nobody\"");
        let project = Project::load(root).unwrap_or_else(|e| panic!("{e}"));
        let a = &project.assets["a"];
        assert_eq!(a.description.as_deref(), Some("from the sidecar"));
        assert_eq!(a.config_file.as_deref(), Some(Path::new("assets/a.toml")));
        let b = &project.assets["b"];
        assert_eq!(b.owner.as_deref(), Some("finance"));
        assert_eq!(
            b.config_file.as_deref(),
            Some(Path::new("assets/marts/b.toml"))
        );
        let c = &project.assets["c"];
        assert_eq!((c.owner.as_deref(), c.config_file.as_deref()), (None, None));
    }

    #[test]
    fn a_header_and_a_sidecar_together_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "cairn.toml", "");
        write(root, "assets/a.sql", "--- owner = \"x\"\nselect 1 as x");
        write(root, "assets/a.toml", "owner = \"y\"");
        let err = Project::load(root).err().map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.contains(
                "assets/a.sql:1: asset config is given both in the file header and in a sidecar"
            )),
            "{err:?}"
        );
    }
}
