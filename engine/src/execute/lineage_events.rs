//! Emitting OpenLineage events for a run, when `[openlineage]` is
//! configured: START when an asset partition starts computing, COMPLETE
//! after its commit, FAIL when it fails — appended to the JSON-lines file
//! (`path`) and/or POSTed to the receiver (`url`, from a bounded queue:
//! `lineage/openlineage_http.rs`). Emission problems are logged and never
//! fail a run whose data is already committed; events a receiver did not
//! get are counted and told at the run's end.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use chrono::Utc;

use cairn_catalog::{UpstreamKind, UpstreamVersion};

use crate::error::EngineError;
use crate::execute::report::{AssetOutcome, AssetResult, Materialized};
use crate::lineage::openlineage::{
    ColumnLineage, JsonLinesEmitter, LineageAssertion, LineageEvent, LineageField, LineageInput,
    LineageOptions, MaterializationFacts, complete_event, fail_event, start_event,
};
use crate::lineage::openlineage_http::{HttpDelivery, HttpSettings};
use crate::model::units::Unit;
use crate::model::workspace::Workspace;

/// The events of one run.
pub(crate) struct LineageSink {
    file: Option<JsonLinesEmitter>,
    http: Option<HttpDelivery>,
    opts: LineageOptions,
    columns: HashMap<String, ColumnLineage>,
    run_id: String,
    open: Mutex<HashMap<Unit, MaterializationFacts>>,
    /// How long the run's end waits for undelivered events.
    close_wait: std::time::Duration,
}

impl LineageSink {
    /// A sink when the project configures OpenLineage; column lineage is
    /// computed once for the assets the run may build.
    pub(crate) async fn new(
        ws: &Workspace,
        assets: &BTreeSet<String>,
        run_id: &str,
    ) -> Result<Option<Self>, EngineError> {
        let Some(config) = &ws.project.config.openlineage else {
            return Ok(None);
        };
        let project = ws
            .project
            .root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "cairn".to_owned());
        let mut opts = LineageOptions::new(
            project,
            format!("{}{}", ws.storage.store_url, ws.storage.root),
        );
        if let Some(ns) = &config.namespace {
            opts.job_namespace = ns.clone();
        }
        let mut columns = HashMap::new();
        if let Ok(plans) = crate::compile::logical_plans(ws, assets).await {
            for (name, plan) in plans.iter().filter(|(n, _)| assets.contains(*n)) {
                let Ok(lineage) = crate::lineage::column_lineage::column_lineage(plan) else {
                    continue;
                };
                let facet: ColumnLineage = lineage
                    .into_iter()
                    .map(|c| {
                        let sources = c
                            .sources
                            .into_iter()
                            .map(|s| {
                                let kind = match s.kind {
                                    crate::lineage::column_lineage::LineageKind::Direct => {
                                        "IDENTITY".to_owned()
                                    }
                                    other => serde_json::to_value(other)
                                        .ok()
                                        .and_then(|v| v.as_str().map(str::to_uppercase))
                                        .unwrap_or_default(),
                                };
                                (s.table, s.column, kind)
                            })
                            .collect();
                        (c.column, sources)
                    })
                    .collect();
                columns.insert(name.clone(), facet);
            }
        }
        let http = match &config.url {
            Some(url) => Some(HttpDelivery::start(http_settings(config, url)?)),
            None => None,
        };
        Ok(Some(LineageSink {
            file: config
                .path
                .as_ref()
                .map(|path| JsonLinesEmitter::new(ws.project.root.join(path))),
            http,
            opts,
            columns,
            run_id: run_id.to_owned(),
            open: Mutex::new(HashMap::new()),
            close_wait: close_wait(config),
        }))
    }

    fn emit(&self, event: &LineageEvent) {
        if let Some(file) = &self.file
            && let Err(e) = file.emit(event)
        {
            tracing::warn!(
                "OpenLineage event not written to {}: {e}",
                file.path().display()
            );
        }
        if let Some(http) = &self.http {
            http.send(event.to_json_line());
        }
    }

    /// The run ended: lets the events on their way reach the receiver
    /// (for at most one POST timeout), and tells how many did not.
    pub(crate) async fn close(self) {
        let Some(http) = self.http else {
            return;
        };
        let url = http.endpoint_url().to_owned();
        let counts = http.close(self.close_wait).await;
        if counts.dropped > 0 {
            tracing::warn!(
                "OpenLineage: {} of {} events of run {} not delivered to {url} (last error: {})",
                counts.dropped,
                counts.dropped + counts.delivered,
                self.run_id,
                counts.last_error.as_deref().unwrap_or("none")
            );
        }
    }

    /// An asset partition started computing with these inputs.
    pub(crate) fn start(&self, ws: &Workspace, unit: &Unit, inputs: &[UpstreamVersion]) {
        let mut facts = MaterializationFacts::new(&self.run_id, &unit.0, &unit.1);
        if let Some(def) = ws
            .project
            .assets
            .get(&unit.0)
            .and_then(|a| a.partitions.as_ref())
            && !unit.1.is_empty()
        {
            facts.partition_dimensions = def
                .dimensions
                .iter()
                .map(|d| d.name().to_owned())
                .zip(unit.1.split('|').map(str::to_owned))
                .collect();
        }
        let mut seen = BTreeSet::new();
        for i in inputs {
            if !seen.insert(i.name.clone()) {
                continue;
            }
            let namespace = match i.kind {
                UpstreamKind::Asset => self.opts.storage_namespace.clone(),
                UpstreamKind::Source => ws
                    .project
                    .sources
                    .get(&i.name)
                    .map(|s| {
                        s.url
                            .clone()
                            .unwrap_or_else(|| format!("file://{}", s.path.display()))
                    })
                    .unwrap_or_else(|| self.opts.storage_namespace.clone()),
            };
            let single = inputs.iter().filter(|x| x.name == i.name).count() == 1;
            facts.inputs.push(LineageInput {
                namespace,
                name: i.name.clone(),
                version: single.then(|| i.data_version.clone()),
            });
        }
        facts.column_lineage = self.columns.get(&unit.0).cloned();
        self.emit(&start_event(&self.opts, &facts, Utc::now()));
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(unit.clone(), facts);
    }

    /// An asset partition finished (only started ones have events).
    pub(crate) fn finish(&self, result: &AssetResult) {
        let unit = (result.asset.clone(), result.partition.clone());
        let Some(facts) = self
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&unit)
        else {
            return;
        };
        match &result.outcome {
            AssetOutcome::Materialized(m) => {
                let mut facts = with_materialized(facts, m);
                if let Some(schema) = &m.schema {
                    facts.schema = LineageField::from_arrow(schema);
                }
                self.emit(&complete_event(&self.opts, &facts, Utc::now()));
            }
            AssetOutcome::Failed { error, checks } => {
                let mut facts = facts;
                facts.checks = checks
                    .iter()
                    .map(|c| crate::lineage::openlineage::LineageAssertion::from_outcome(c, None))
                    .collect();
                self.emit(&fail_event(&self.opts, &facts, Utc::now(), error));
            }
            AssetOutcome::Fresh { .. } | AssetOutcome::Skipped { .. } => {}
        }
    }
}

/// The HTTP delivery's settings; the API key read from its variable (a
/// missing one stops the run before anything is built).
fn http_settings(
    config: &cairn_assets::OpenLineageConfig,
    url: &str,
) -> Result<HttpSettings, EngineError> {
    let api_key = match &config.api_key_env {
        Some(var) => match std::env::var(var) {
            Ok(key) if !key.trim().is_empty() => Some(key.trim().to_owned()),
            _ => {
                return Err(EngineError::Usage(format!(
                    "[openlineage] api_key_env = \"{var}\": the variable {var} is not set (or empty); export it with the receiver's API key, or remove api_key_env"
                )));
            }
        },
        None => None,
    };
    Ok(HttpSettings {
        endpoint_url: format!(
            "{}/{}",
            url.trim().trim_end_matches('/'),
            config.endpoint.trim_start_matches('/')
        ),
        api_key,
        timeout: std::time::Duration::from_secs(config.timeout_seconds),
        retries: config.retries,
        queue_size: config.queue_size,
    })
}

/// The longest a run's end waits for its events: one POST's timeout (a
/// live receiver takes milliseconds; a dead one must not hold the run).
fn close_wait(config: &cairn_assets::OpenLineageConfig) -> std::time::Duration {
    std::time::Duration::from_secs(config.timeout_seconds.clamp(1, 30))
}

/// Takes rows, bytes, files, data version and check results from a
/// committed materialization.
fn with_materialized(mut facts: MaterializationFacts, m: &Materialized) -> MaterializationFacts {
    facts.rows = Some(m.rows);
    facts.bytes = Some(m.bytes_written);
    facts.files = Some(m.files.len() as u64);
    facts.data_version = Some(m.data_version.clone());
    facts.checks = m
        .checks
        .iter()
        .map(|c| LineageAssertion::from_outcome(c, None))
        .collect();
    facts
}
