//! OpenLineage run events for materializations.
//!
//! Every materialization of one asset partition is one OpenLineage *run* of
//! the *job* named after the asset: a `START` event when it begins and a
//! `COMPLETE` or `FAIL` event when it ends, all with the same `runId`
//! ([`lineage_run_id`], derived from the Cairn run, the asset and the
//! partition, so the three events agree without shared state). The Cairn
//! run itself is the parent run (job `cairn.run` in the project's
//! namespace).
//!
//! ```text
//!  MaterializationFacts ──► start_event / complete_event / fail_event ──► LineageEvent
//!   (filled from run.rs's        (pure: no clock, no I/O)                     │
//!    Materialized, schema,                                                    ▼
//!    checks, upstreams)                                     JsonLinesEmitter (one event a line)
//! ```
//!
//! Events follow the OpenLineage 2-0-2 `RunEvent` schema. Facets used, with
//! the versions of the official Python client `openlineage-python` 1.54.0:
//!
//! | where | key | facet |
//! | --- | --- | --- |
//! | run | `parent` | ParentRunFacet 1-2-0 |
//! | run | `processing_engine` | ProcessingEngineRunFacet 1-1-1 |
//! | run (FAIL) | `errorMessage` | ErrorMessageRunFacet 1-0-1 |
//! | input dataset | `version` | DatasetVersionDatasetFacet 1-0-1 |
//! | output dataset | `schema` | SchemaDatasetFacet 1-2-0 |
//! | output dataset | `columnLineage` | ColumnLineageDatasetFacet 1-2-0 |
//! | output dataset | `dataQualityAssertions` | DataQualityAssertionsDatasetFacet 1-1-0 |
//! | output dataset | `version` | DatasetVersionDatasetFacet 1-0-1 |
//! | output facets | `outputStatistics` | OutputStatisticsOutputDatasetFacet 1-0-2 |
//! | output facets | `subset` | OutputSubsetOutputDatasetFacet 1-0-0 (the partition) |
//!
//! The job is the asset, not the asset partition: partitions are runs of
//! one job, and the partition written is the output's `subset` facet.
//! `dataQualityAssertions` is declared an input-dataset facet by the spec;
//! like the OpenLineage dbt integration, Cairn attaches it to the dataset's
//! own `facets` (the checks ran on the output).
//!
//! `tests/openlineage/validate.py` validates events against the official
//! schemas; the tests below run it. The HTTP transport (`[openlineage]
//! url`) is `openlineage_http.rs`.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use cairn_assets::checks::{CheckDef, CheckKind};
use chrono::{DateTime, SecondsFormat, Utc};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::quality::checks::CheckOutcome;

/// The `producer` of every event and facet: Cairn's repository at this
/// version.
pub const PRODUCER: &str = concat!(
    "https://github.com/cairn-data/cairn/tree/v",
    env!("CARGO_PKG_VERSION")
);

/// The `schemaURL` of every event: the OpenLineage 2-0-2 `RunEvent`.
pub const RUN_EVENT_SCHEMA_URL: &str =
    "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";

/// The default namespace of the per-asset jobs.
pub const DEFAULT_JOB_NAMESPACE: &str = "cairn";

/// The job name of the parent run (the Cairn run).
pub const PARENT_JOB_NAME: &str = "cairn.run";

const PARENT_RUN_FACET: &str =
    "https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet";
const PROCESSING_ENGINE_FACET: &str = "https://openlineage.io/spec/facets/1-1-1/ProcessingEngineRunFacet.json#/$defs/ProcessingEngineRunFacet";
const ERROR_MESSAGE_FACET: &str = "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet";
const SCHEMA_FACET: &str =
    "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet";
const COLUMN_LINEAGE_FACET: &str = "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet";
const DATA_QUALITY_ASSERTIONS_FACET: &str = "https://openlineage.io/spec/facets/1-1-0/DataQualityAssertionsDatasetFacet.json#/$defs/DataQualityAssertionsDatasetFacet";
const DATASET_VERSION_FACET: &str = "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet";
const OUTPUT_STATISTICS_FACET: &str = "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet";
const OUTPUT_SUBSET_FACET: &str = "https://openlineage.io/spec/facets/1-0-0/BaseSubsetDatasetFacet.json#/$defs/OutputSubsetOutputDatasetFacet";

const RUN_ID_DOMAIN: &[u8] = b"cairn/openlineage/run/v1\0";
const PARENT_ID_DOMAIN: &[u8] = b"cairn/openlineage/parent/v1\0";

/// Where events go and what they are named after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineageOptions {
    /// Namespace of the per-asset jobs ([`DEFAULT_JOB_NAMESPACE`] unless
    /// configured).
    pub job_namespace: String,
    /// The project's name: the namespace of the parent `cairn.run` job.
    pub project: String,
    /// Dataset namespace of the assets' storage, e.g.
    /// `file:///srv/warehouse` or `s3://bucket/prefix`.
    pub storage_namespace: String,
}

impl LineageOptions {
    /// Options with the default job namespace.
    pub fn new(project: impl Into<String>, storage_namespace: impl Into<String>) -> Self {
        Self {
            job_namespace: DEFAULT_JOB_NAMESPACE.to_owned(),
            project: project.into(),
            storage_namespace: storage_namespace.into(),
        }
    }
}

/// One upstream read by the materialization: an input dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineageInput {
    /// Dataset namespace: the storage namespace for assets, the source's
    /// location (e.g. `file:///srv/raw`) for sources.
    pub namespace: String,
    /// Dataset name: the upstream's name.
    pub name: String,
    /// The upstream's data version read, if known (the `version` facet).
    pub version: Option<String>,
}

/// One column of the output schema (the `schema` facet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineageField {
    /// Column name.
    pub name: String,
    /// Type as text, e.g. `Int64`, `Utf8`, `struct`.
    pub data_type: String,
    /// Fields of a struct column (empty otherwise).
    pub fields: Vec<LineageField>,
}

impl LineageField {
    /// A flat column.
    pub fn new(name: impl Into<String>, data_type: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            data_type: data_type.into(),
            fields: Vec::new(),
        }
    }

    /// The columns of an Arrow schema, struct columns with their fields.
    pub fn from_arrow(schema: &Schema) -> Vec<Self> {
        schema
            .fields()
            .iter()
            .map(|f| Self::from_arrow_field(f))
            .collect()
    }

    fn from_arrow_field(field: &Field) -> Self {
        match field.data_type() {
            DataType::Struct(children) => Self {
                name: field.name().clone(),
                data_type: "struct".to_owned(),
                fields: children.iter().map(|f| Self::from_arrow_field(f)).collect(),
            },
            other => Self::new(field.name().clone(), other.to_string()),
        }
    }
}

/// One check result (an entry of the `dataQualityAssertions` facet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineageAssertion {
    /// The check's kind, e.g. `not_null` (OpenLineage's `assertion`).
    pub assertion: String,
    /// The check as declared, e.g. `not_null(id)` (OpenLineage's `name`).
    pub name: String,
    /// Whether it passed.
    pub success: bool,
    /// The one column it checks, when it checks exactly one.
    pub column: Option<String>,
    /// `warn` or `error`.
    pub severity: Option<String>,
}

impl LineageAssertion {
    /// From a check outcome; `def` (the declared check) supplies the column
    /// and the kind, which are otherwise read from the name's form
    /// `kind(args)` (kind only).
    pub fn from_outcome(outcome: &CheckOutcome, def: Option<&CheckDef>) -> Self {
        let assertion = match def {
            Some(d) => check_kind_name(&d.kind).to_owned(),
            None => outcome
                .name
                .split('(')
                .next()
                .unwrap_or(&outcome.name)
                .trim()
                .to_owned(),
        };
        let column = def.and_then(|d| match d.columns().as_slice() {
            [one] => Some((*one).to_owned()),
            _ => None,
        });
        Self {
            assertion,
            name: outcome.name.clone(),
            success: outcome.passed,
            column,
            severity: Some(outcome.severity.to_owned()),
        }
    }
}

fn check_kind_name(kind: &CheckKind) -> &'static str {
    match kind {
        CheckKind::NotNull { .. } => "not_null",
        CheckKind::Unique { .. } => "unique",
        CheckKind::AcceptedValues { .. } => "accepted_values",
        CheckKind::Relationships { .. } => "relationships",
        CheckKind::RowCount { .. } => "row_count",
        CheckKind::Freshness { .. } => "freshness",
        CheckKind::Expression { .. } => "expression",
        CheckKind::Sql { .. } => "sql",
    }
}

/// Column lineage: for each output column, the `(input dataset name, input
/// column, transformation)` it is computed from.
///
/// The transformation is OpenLineage's `type`, `DIRECT` or `INDIRECT`, or
/// one of its subtypes, from which the type follows: `IDENTITY`,
/// `TRANSFORMATION`, `AGGREGATION` (direct); `FILTER`, `JOIN`, `GROUP_BY`,
/// `SORT`, `WINDOW`, `CONDITIONAL` (indirect). Also accepted, for
/// [`crate::lineage::column_lineage`]'s kinds: `EXPRESSION` (= `TRANSFORMATION`),
/// `AGGREGATE` (= `AGGREGATION`), `FILTER_OR_JOIN_KEY` (= `FILTER`). Case is
/// ignored; anything else is passed on as the `type`.
pub type ColumnLineage = Vec<(String, Vec<(String, String, String)>)>;

/// What one materialization of an asset partition read, wrote and found.
/// Callers fill it from a committed materialization (rows, bytes, files,
/// data version, checks) and the plan (inputs, schema, column lineage).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaterializationFacts {
    /// The Cairn run id (a UUID; anything else is hashed into one).
    pub run_id: String,
    /// Asset name: the job name and the output dataset name.
    pub asset: String,
    /// Partition key (`""` when unpartitioned).
    pub partition: String,
    /// The partition key's dimensions as `(name, value)`, e.g.
    /// `[("date", "2024-05-01"), ("region", "eu")]`; empty means one
    /// dimension named `key`.
    pub partition_dimensions: Vec<(String, String)>,
    /// Upstreams read.
    pub inputs: Vec<LineageInput>,
    /// Output columns (no `schema` facet when empty).
    pub schema: Vec<LineageField>,
    /// Column lineage, when known.
    pub column_lineage: Option<ColumnLineage>,
    /// Check results (no `dataQualityAssertions` facet when empty).
    pub checks: Vec<LineageAssertion>,
    /// Rows written.
    pub rows: Option<u64>,
    /// Bytes written.
    pub bytes: Option<u64>,
    /// Files written.
    pub files: Option<u64>,
    /// The new data version.
    pub data_version: Option<String>,
}

impl MaterializationFacts {
    /// Facts about `asset`'s partition `partition` in run `run_id`, with
    /// nothing read or written yet.
    pub fn new(
        run_id: impl Into<String>,
        asset: impl Into<String>,
        partition: impl Into<String>,
    ) -> Self {
        Self {
            run_id: run_id.into(),
            asset: asset.into(),
            partition: partition.into(),
            ..Self::default()
        }
    }
}

/// One OpenLineage `RunEvent`, as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LineageEvent(pub Value);

impl LineageEvent {
    /// `START`, `COMPLETE` or `FAIL`.
    #[cfg(test)]
    pub fn event_type(&self) -> Option<&str> {
        self.0.get("eventType").and_then(Value::as_str)
    }

    /// The run's id.
    #[cfg(test)]
    pub fn run_id(&self) -> Option<&str> {
        self.0
            .get("run")
            .and_then(|r| r.get("runId"))
            .and_then(Value::as_str)
    }

    /// The event as one line of JSON (no trailing newline).
    pub fn to_json_line(&self) -> String {
        self.0.to_string()
    }
}

/// The OpenLineage run id of one asset partition's materialization in a
/// Cairn run: a version-8 UUID from blake3 of the three, so every event of
/// that materialization carries the same id.
pub fn lineage_run_id(cairn_run_id: &str, asset: &str, partition: &str) -> Uuid {
    let mut h = blake3::Hasher::new();
    h.update(RUN_ID_DOMAIN);
    for part in [cairn_run_id, asset, partition] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    custom_uuid(h.finalize())
}

/// The parent run's id: the Cairn run id itself when it is a UUID (it is a
/// UUIDv7), else a version-8 UUID hashed from it.
fn parent_run_id(cairn_run_id: &str) -> Uuid {
    Uuid::parse_str(cairn_run_id).unwrap_or_else(|_| {
        let mut h = blake3::Hasher::new();
        h.update(PARENT_ID_DOMAIN);
        h.update(cairn_run_id.as_bytes());
        custom_uuid(h.finalize())
    })
}

fn custom_uuid(hash: blake3::Hash) -> Uuid {
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash.as_bytes()[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The `START` event, at `at` (when the materialization began): inputs,
/// and the output with its schema when known.
pub fn start_event(
    opts: &LineageOptions,
    facts: &MaterializationFacts,
    at: DateTime<Utc>,
) -> LineageEvent {
    let output = output_dataset(opts, facts, Stage::Start);
    event("START", opts, facts, at, run_facets(opts, facts), output)
}

/// The `COMPLETE` event, at `at` (when the commit succeeded): the output
/// with schema, column lineage, check results, data version and
/// statistics.
pub fn complete_event(
    opts: &LineageOptions,
    facts: &MaterializationFacts,
    at: DateTime<Utc>,
) -> LineageEvent {
    let output = output_dataset(opts, facts, Stage::Complete);
    event("COMPLETE", opts, facts, at, run_facets(opts, facts), output)
}

/// The `FAIL` event, at `at`, with `error` as the `errorMessage` facet and
/// the check results that ran (e.g. the `error` check that blocked the
/// commit).
pub fn fail_event(
    opts: &LineageOptions,
    facts: &MaterializationFacts,
    at: DateTime<Utc>,
    error: &str,
) -> LineageEvent {
    let mut run = run_facets(opts, facts);
    run.insert(
        "errorMessage".to_owned(),
        facet(
            ERROR_MESSAGE_FACET,
            [
                ("message", json!(error)),
                ("programmingLanguage", json!("Rust")),
            ],
        ),
    );
    let output = output_dataset(opts, facts, Stage::Fail);
    event("FAIL", opts, facts, at, run, output)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Start,
    Complete,
    Fail,
}

fn event(
    event_type: &str,
    opts: &LineageOptions,
    facts: &MaterializationFacts,
    at: DateTime<Utc>,
    run_facets: Map<String, Value>,
    output: Value,
) -> LineageEvent {
    let run_id = lineage_run_id(&facts.run_id, &facts.asset, &facts.partition);
    let inputs: Vec<Value> = facts.inputs.iter().map(input_dataset).collect();
    LineageEvent(json!({
        "eventType": event_type,
        "eventTime": at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "producer": PRODUCER,
        "schemaURL": RUN_EVENT_SCHEMA_URL,
        "run": { "runId": run_id.to_string(), "facets": run_facets },
        "job": { "namespace": opts.job_namespace, "name": facts.asset },
        "inputs": inputs,
        "outputs": [output],
    }))
}

/// A facet: its fields plus `_producer` and `_schemaURL`.
fn facet<'a>(schema_url: &str, fields: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
    let mut m = Map::new();
    m.insert("_producer".to_owned(), json!(PRODUCER));
    m.insert("_schemaURL".to_owned(), json!(schema_url));
    for (k, v) in fields {
        m.insert(k.to_owned(), v);
    }
    Value::Object(m)
}

fn run_facets(opts: &LineageOptions, facts: &MaterializationFacts) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(
        "parent".to_owned(),
        facet(
            PARENT_RUN_FACET,
            [
                (
                    "run",
                    json!({ "runId": parent_run_id(&facts.run_id).to_string() }),
                ),
                (
                    "job",
                    json!({ "namespace": opts.project, "name": PARENT_JOB_NAME }),
                ),
            ],
        ),
    );
    m.insert(
        "processing_engine".to_owned(),
        facet(
            PROCESSING_ENGINE_FACET,
            [
                ("version", json!(env!("CARGO_PKG_VERSION"))),
                ("name", json!("cairn")),
            ],
        ),
    );
    m
}

fn input_dataset(input: &LineageInput) -> Value {
    let mut d = Map::new();
    d.insert("namespace".to_owned(), json!(input.namespace));
    d.insert("name".to_owned(), json!(input.name));
    if let Some(v) = &input.version {
        d.insert(
            "facets".to_owned(),
            json!({ "version": facet(DATASET_VERSION_FACET, [("datasetVersion", json!(v))]) }),
        );
    }
    Value::Object(d)
}

fn output_dataset(opts: &LineageOptions, facts: &MaterializationFacts, stage: Stage) -> Value {
    let mut facets = Map::new();
    if !facts.schema.is_empty() {
        let fields: Vec<Value> = facts
            .schema
            .iter()
            .enumerate()
            .map(|(i, f)| schema_field(f, Some(i + 1)))
            .collect();
        facets.insert(
            "schema".to_owned(),
            facet(SCHEMA_FACET, [("fields", Value::Array(fields))]),
        );
    }
    if stage == Stage::Complete {
        if let Some(lineage) = &facts.column_lineage {
            facets.insert(
                "columnLineage".to_owned(),
                column_lineage_facet(opts, facts, lineage),
            );
        }
        if let Some(v) = &facts.data_version {
            facets.insert(
                "version".to_owned(),
                facet(DATASET_VERSION_FACET, [("datasetVersion", json!(v))]),
            );
        }
    }
    if stage != Stage::Start && !facts.checks.is_empty() {
        let assertions: Vec<Value> = facts.checks.iter().map(assertion).collect();
        facets.insert(
            "dataQualityAssertions".to_owned(),
            facet(
                DATA_QUALITY_ASSERTIONS_FACET,
                [("assertions", Value::Array(assertions))],
            ),
        );
    }

    let mut output_facets = Map::new();
    if stage == Stage::Complete {
        let mut stats = Vec::new();
        if let Some(rows) = facts.rows {
            stats.push(("rowCount", json!(rows)));
        }
        if let Some(bytes) = facts.bytes {
            stats.push(("size", json!(bytes)));
        }
        if let Some(files) = facts.files {
            stats.push(("fileCount", json!(files)));
        }
        if !stats.is_empty() {
            output_facets.insert(
                "outputStatistics".to_owned(),
                facet(OUTPUT_STATISTICS_FACET, stats),
            );
        }
    }
    if !facts.partition.is_empty() {
        output_facets.insert("subset".to_owned(), partition_subset(facts));
    }

    let mut d = Map::new();
    d.insert("namespace".to_owned(), json!(opts.storage_namespace));
    d.insert("name".to_owned(), json!(facts.asset));
    if !facets.is_empty() {
        d.insert("facets".to_owned(), Value::Object(facets));
    }
    if !output_facets.is_empty() {
        d.insert("outputFacets".to_owned(), Value::Object(output_facets));
    }
    Value::Object(d)
}

fn schema_field(f: &LineageField, ordinal: Option<usize>) -> Value {
    let mut m = Map::new();
    m.insert("name".to_owned(), json!(f.name));
    m.insert("type".to_owned(), json!(f.data_type));
    if let Some(i) = ordinal {
        m.insert("ordinal_position".to_owned(), json!(i));
    }
    if !f.fields.is_empty() {
        let nested: Vec<Value> = f.fields.iter().map(|c| schema_field(c, None)).collect();
        m.insert("fields".to_owned(), Value::Array(nested));
    }
    Value::Object(m)
}

fn assertion(a: &LineageAssertion) -> Value {
    let mut m = Map::new();
    m.insert("assertion".to_owned(), json!(a.assertion));
    m.insert("success".to_owned(), json!(a.success));
    if let Some(c) = &a.column {
        m.insert("column".to_owned(), json!(c));
    }
    if let Some(s) = &a.severity {
        m.insert("severity".to_owned(), json!(s));
    }
    m.insert("name".to_owned(), json!(a.name));
    Value::Object(m)
}

fn column_lineage_facet(
    opts: &LineageOptions,
    facts: &MaterializationFacts,
    lineage: &ColumnLineage,
) -> Value {
    let namespace_of = |dataset: &str| -> String {
        facts
            .inputs
            .iter()
            .find(|i| i.name == dataset)
            .map_or_else(|| opts.storage_namespace.clone(), |i| i.namespace.clone())
    };
    let mut fields = Map::new();
    for (output_column, sources) in lineage {
        let input_fields: Vec<Value> = sources
            .iter()
            .map(|(dataset, column, kind)| {
                json!({
                    "namespace": namespace_of(dataset),
                    "name": dataset,
                    "field": column,
                    "transformations": [transformation(kind)],
                })
            })
            .collect();
        fields.insert(
            output_column.clone(),
            json!({ "inputFields": input_fields }),
        );
    }
    facet(COLUMN_LINEAGE_FACET, [("fields", Value::Object(fields))])
}

/// OpenLineage's `{type, subtype}` for a transformation name.
fn transformation(kind: &str) -> Value {
    let upper = kind.trim().to_ascii_uppercase();
    let (ty, subtype) = match upper.as_str() {
        "DIRECT" | "INDIRECT" => (upper.as_str(), None),
        "IDENTITY" | "TRANSFORMATION" | "AGGREGATION" => ("DIRECT", Some(upper.as_str())),
        "EXPRESSION" => ("DIRECT", Some("TRANSFORMATION")),
        "AGGREGATE" => ("DIRECT", Some("AGGREGATION")),
        "FILTER" | "JOIN" | "GROUP_BY" | "SORT" | "WINDOW" | "CONDITIONAL" => {
            ("INDIRECT", Some(upper.as_str()))
        }
        "FILTER_OR_JOIN_KEY" | "FILTERORJOINKEY" => ("INDIRECT", Some("FILTER")),
        _ => (kind, None),
    };
    match subtype {
        Some(s) => json!({ "type": ty, "subtype": s }),
        None => json!({ "type": ty }),
    }
}

fn partition_subset(facts: &MaterializationFacts) -> Value {
    let dimensions: Map<String, Value> = if facts.partition_dimensions.is_empty() {
        [("key".to_owned(), json!(facts.partition))]
            .into_iter()
            .collect()
    } else {
        facts
            .partition_dimensions
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect()
    };
    facet(
        OUTPUT_SUBSET_FACET,
        [(
            "outputCondition",
            json!({
                "type": "partition",
                "partitions": [{ "identifier": facts.partition, "dimensions": dimensions }],
            }),
        )],
    )
}

/// Why an event could not be written.
#[derive(Debug, thiserror::Error)]
pub enum LineageError {
    /// The file's folder could not be created.
    #[error("cannot create {path}: {source}")]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file could not be opened or written.
    #[error("cannot write OpenLineage events to {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Appends events to a file, one JSON object a line (the format of
/// OpenLineage's file transport).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonLinesEmitter {
    path: PathBuf,
}

impl JsonLinesEmitter {
    /// An emitter appending to `path` (created on the first event, with
    /// its folders).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event as one line, in a single write.
    pub fn emit(&self, event: &LineageEvent) -> Result<(), LineageError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|source| LineageError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let mut line = event.to_json_line().into_bytes();
        line.push(b'\n');
        let write_err = |source| LineageError::Write {
            path: self.path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(write_err)?;
        file.write_all(&line).map_err(write_err)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]
mod tests {
    use std::process::Command;
    use std::sync::Arc;

    use cairn_assets::checks::{Severity, parse_check};
    use chrono::TimeZone;

    use super::*;

    const VALIDATE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/openlineage/validate.py"
    );

    fn opts() -> LineageOptions {
        LineageOptions::new("shop", "file:///srv/warehouse")
    }

    fn facts() -> MaterializationFacts {
        let mut f = MaterializationFacts::new(
            "0192f0c4-5b7e-7a31-9d2e-3f4a5b6c7d8e",
            "daily_orders",
            "2024-05-01|eu",
        );
        f.partition_dimensions = vec![
            ("date".to_owned(), "2024-05-01".to_owned()),
            ("region".to_owned(), "eu".to_owned()),
        ];
        f.inputs = vec![
            LineageInput {
                namespace: "file:///srv/raw".to_owned(),
                name: "orders".to_owned(),
                version: Some("ab12cd".to_owned()),
            },
            LineageInput {
                namespace: "file:///srv/warehouse".to_owned(),
                name: "customers".to_owned(),
                version: None,
            },
        ];
        let schema = Schema::new(vec![
            Field::new("order_id", DataType::Int64, false),
            Field::new("customer", DataType::Utf8, true),
            Field::new(
                "total",
                DataType::Struct(
                    vec![
                        Arc::new(Field::new("amount", DataType::Float64, true)),
                        Arc::new(Field::new("currency", DataType::Utf8, true)),
                    ]
                    .into(),
                ),
                true,
            ),
        ]);
        f.schema = LineageField::from_arrow(&schema);
        f.column_lineage = Some(vec![
            (
                "order_id".to_owned(),
                vec![("orders".to_owned(), "id".to_owned(), "IDENTITY".to_owned())],
            ),
            (
                "customer".to_owned(),
                vec![
                    (
                        "customers".to_owned(),
                        "name".to_owned(),
                        "expression".to_owned(),
                    ),
                    (
                        "orders".to_owned(),
                        "customer_id".to_owned(),
                        "JOIN".to_owned(),
                    ),
                ],
            ),
        ]);
        let not_null = parse_check("not_null(order_id)", Severity::Error, 1).unwrap();
        let rows = parse_check("row_count(1, 1000)", Severity::Warn, 2).unwrap();
        let outcome = |name: &str, severity: &'static str, passed: bool| CheckOutcome {
            name: name.to_owned(),
            severity,
            passed,
            failing_rows: u64::from(!passed),
            sample: Vec::new(),
            error: None,
        };
        f.checks = vec![
            LineageAssertion::from_outcome(
                &outcome("not_null(order_id)", "error", true),
                Some(&not_null),
            ),
            LineageAssertion::from_outcome(
                &outcome("row_count(1, 1000)", "warn", false),
                Some(&rows),
            ),
        ];
        f.rows = Some(42);
        f.bytes = Some(4096);
        f.files = Some(1);
        f.data_version = Some("9f86d081884c".to_owned());
        f
    }

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_714_557_600 + secs, 0).unwrap()
    }

    /// Runs validate.py on `path`: (exit code, stdout + stderr).
    fn validate(path: &Path) -> (i32, String) {
        let out = Command::new("python3")
            .arg(VALIDATE)
            .arg(path)
            .output()
            .expect("python3 must be installed (tests/run.sh installs what validate.py needs)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    fn events() -> Vec<LineageEvent> {
        let (o, f) = (opts(), facts());
        vec![
            start_event(&o, &f, at(0)),
            complete_event(&o, &f, at(5)),
            fail_event(&o, &f, at(6), "row_count(1, 1000) failed: 0 rows"),
        ]
    }

    #[test]
    fn run_ids_are_stable_per_asset_partition() {
        let a = lineage_run_id("r1", "orders", "2024-05-01");
        assert_eq!(a, lineage_run_id("r1", "orders", "2024-05-01"));
        assert_ne!(a, lineage_run_id("r1", "orders", "2024-05-02"));
        assert_ne!(a, lineage_run_id("r2", "orders", "2024-05-01"));
        assert_ne!(a, lineage_run_id("r1", "orders2", "024-05-01"));
        assert_eq!(a.get_version_num(), 8);
        let ids: Vec<_> = events()
            .iter()
            .map(|e| e.run_id().map(str::to_owned))
            .collect();
        assert!(ids.iter().all(|id| id.is_some() && *id == ids[0]));
    }

    #[test]
    fn parent_is_the_cairn_run() {
        let e = start_event(&opts(), &facts(), at(0));
        let parent = &e.0["run"]["facets"]["parent"];
        assert_eq!(
            parent["run"]["runId"],
            "0192f0c4-5b7e-7a31-9d2e-3f4a5b6c7d8e"
        );
        assert_eq!(parent["job"]["namespace"], "shop");
        assert_eq!(parent["job"]["name"], PARENT_JOB_NAME);
        assert_eq!(e.0["job"]["namespace"], DEFAULT_JOB_NAMESPACE);
        assert_eq!(e.0["job"]["name"], "daily_orders");
        // A run id that is not a UUID still gives a valid UUID.
        let mut f = facts();
        f.run_id = "not-a-uuid".to_owned();
        let e = start_event(&opts(), &f, at(0));
        let id = e.0["run"]["facets"]["parent"]["run"]["runId"]
            .as_str()
            .unwrap();
        assert!(Uuid::parse_str(id).is_ok());
    }

    #[test]
    fn facets_by_event_type() {
        let [start, complete, fail] = <[LineageEvent; 3]>::try_from(events()).unwrap();
        assert_eq!(start.event_type(), Some("START"));
        assert_eq!(start.0["eventTime"], "2024-05-01T10:00:00.000Z");
        let out = &start.0["outputs"][0];
        assert!(out["facets"]["schema"].is_object());
        assert!(out["facets"].get("dataQualityAssertions").is_none());
        assert!(out["outputFacets"].get("outputStatistics").is_none());

        let out = &complete.0["outputs"][0];
        let f = &out["facets"];
        assert_eq!(f["schema"]["fields"][2]["fields"][1]["name"], "currency");
        let customer = &f["columnLineage"]["fields"]["customer"]["inputFields"];
        assert_eq!(customer[0]["namespace"], "file:///srv/warehouse");
        assert_eq!(
            customer[0]["transformations"][0]["subtype"],
            "TRANSFORMATION"
        );
        assert_eq!(customer[1]["transformations"][0]["type"], "INDIRECT");
        let a = &f["dataQualityAssertions"]["assertions"];
        assert_eq!(a[0]["assertion"], "not_null");
        assert_eq!(a[0]["column"], "order_id");
        assert_eq!(a[1]["success"], false);
        assert!(a[1].get("column").is_none());
        assert_eq!(out["outputFacets"]["outputStatistics"]["rowCount"], 42);
        assert_eq!(out["outputFacets"]["outputStatistics"]["size"], 4096);
        assert_eq!(
            out["outputFacets"]["subset"]["outputCondition"]["partitions"][0]["dimensions"]["region"],
            "eu"
        );

        assert_eq!(fail.event_type(), Some("FAIL"));
        let err = &fail.0["run"]["facets"]["errorMessage"];
        assert_eq!(err["programmingLanguage"], "Rust");
        assert!(fail.0["outputs"][0]["facets"]["dataQualityAssertions"].is_object());
        assert!(fail.0["outputs"][0]["facets"].get("version").is_none());
    }

    #[test]
    fn emitter_appends_lines_and_reports_errors() {
        let dir = tempfile::tempdir().unwrap();
        let emitter = JsonLinesEmitter::new(dir.path().join("a/b/events.jsonl"));
        for e in events() {
            emitter.emit(&e).unwrap();
        }
        let text = fs::read_to_string(emitter.path()).unwrap();
        let back: Vec<LineageEvent> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(back, events());

        // A folder where the file should be: an error, not a panic.
        let blocked = JsonLinesEmitter::new(dir.path().join("a"));
        assert!(matches!(
            blocked.emit(&events()[0]),
            Err(LineageError::Write { .. })
        ));
    }

    #[test]
    fn events_validate_against_the_openlineage_schemas() {
        let dir = tempfile::tempdir().unwrap();
        let emitter = JsonLinesEmitter::new(dir.path().join("events.jsonl"));
        for e in events() {
            emitter.emit(&e).unwrap();
        }
        // Also unpartitioned, with nothing known beyond the names.
        let bare = MaterializationFacts::new("r-1", "plain", "");
        emitter.emit(&start_event(&opts(), &bare, at(0))).unwrap();
        emitter
            .emit(&complete_event(&opts(), &bare, at(1)))
            .unwrap();
        emitter
            .emit(&fail_event(&opts(), &bare, at(1), "boom"))
            .unwrap();
        let (code, out) = validate(emitter.path());
        assert_eq!(code, 0, "validate.py rejected Cairn's events:\n{out}");
        assert!(out.contains("6 valid, 0 invalid"), "{out}");
    }

    #[test]
    fn validator_rejects_invalid_events() {
        let dir = tempfile::tempdir().unwrap();
        let good = complete_event(&opts(), &facts(), at(5));
        type Breaker = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(&str, Breaker)> = vec![
            (
                "no eventTime",
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("eventTime");
                }),
            ),
            (
                "runId not a UUID",
                Box::new(|v| v["run"]["runId"] = json!("run-1")),
            ),
            (
                "rowCount as text",
                Box::new(|v| {
                    v["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] = json!("42")
                }),
            ),
            (
                "assertion without success",
                Box::new(|v| {
                    v["outputs"][0]["facets"]["dataQualityAssertions"]["assertions"][0]
                        .as_object_mut()
                        .unwrap()
                        .remove("success");
                }),
            ),
            (
                "errorMessage without programmingLanguage",
                Box::new(|v| {
                    v["run"]["facets"]["errorMessage"] = json!({
                        "_producer": PRODUCER,
                        "_schemaURL": ERROR_MESSAGE_FACET,
                        "message": "boom",
                    });
                }),
            ),
            (
                "facet without _schemaURL",
                Box::new(|v| {
                    v["outputs"][0]["facets"]["version"]
                        .as_object_mut()
                        .unwrap()
                        .remove("_schemaURL");
                }),
            ),
        ];
        for (what, break_it) in cases {
            let mut v = good.0.clone();
            break_it(&mut v);
            let path = dir.path().join(format!("{}.jsonl", what.replace(' ', "_")));
            let emitter = JsonLinesEmitter::new(&path);
            emitter.emit(&good).unwrap();
            emitter.emit(&LineageEvent(v)).unwrap();
            let (code, out) = validate(&path);
            assert_eq!(code, 1, "{what}: expected validate.py to fail:\n{out}");
            assert!(out.contains("1 valid, 1 invalid"), "{what}:\n{out}");
        }
        // Not JSON at all.
        let path = dir.path().join("garbage.jsonl");
        fs::write(&path, "{not json\n").unwrap();
        assert_eq!(validate(&path).0, 1);
    }
}
