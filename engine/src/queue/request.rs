//! What a client asks the run queue to run, and what the queue stores in
//! the catalog to run it (a planned backfill is stored by its id).

use serde::{Deserialize, Serialize};

use cairn_catalog::BackfillId;

use crate::execute::backfill::BackfillOptions;
use crate::plan::{MaterializeOptions, PartitionFilter};

/// A request for the run queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunRequest {
    /// Bring the selected assets up to date (as `cairn materialize`).
    Materialize {
        /// Selectors; empty means every asset.
        selection: Vec<String>,
        /// Rebuild even when fresh.
        force: bool,
        /// Exactly these partition keys of the selected partitioned assets
        /// (empty: every complete partition).
        #[serde(default)]
        partitions: Vec<String>,
        /// Asset partitions built at the same time within the run (0: 1).
        jobs: usize,
    },
    /// Plan and run a backfill (as `cairn backfill`).
    Backfill {
        /// Selectors.
        selection: Vec<String>,
        /// First time key, inclusive.
        from: Option<String>,
        /// Last time key, inclusive.
        to: Option<String>,
        /// Explicit keys instead of a range.
        partitions: Option<Vec<String>>,
        /// Rebuild fresh partitions too.
        force: bool,
        /// Concurrency within the run.
        jobs: usize,
    },
    /// Bring exactly these asset partitions up to date, building what is
    /// stale among them (what an automation tick requests).
    Units {
        /// `(asset, partition key)` pairs.
        units: Vec<(String, String)>,
        /// Why, readable (recorded as the run's command).
        reason: String,
        /// Concurrency within the run.
        jobs: usize,
    },
    /// Run what a recorded backfill has not committed yet (`--resume`).
    ResumeBackfill {
        /// The backfill.
        id: BackfillId,
        /// Concurrency within the run.
        jobs: usize,
    },
}

impl RunRequest {
    /// The command recorded on the run: what was asked, readable.
    pub(crate) fn command(&self) -> String {
        let selection = |s: &[String]| {
            if s.is_empty() {
                "*".to_owned()
            } else {
                s.join(" ")
            }
        };
        match self {
            RunRequest::Materialize {
                selection: s,
                force,
                partitions,
                ..
            } => {
                let mut c = format!("Materialize {}", selection(s));
                if *force {
                    c.push_str(" --force");
                }
                if !partitions.is_empty() {
                    c.push_str(&format!(" --partitions {}", partitions.join(",")));
                }
                c
            }
            RunRequest::Backfill {
                selection: s,
                from,
                to,
                partitions,
                force,
                ..
            } => {
                let mut c = format!("Backfill {}", selection(s));
                if let Some(f) = from {
                    c.push_str(&format!(" --from {f}"));
                }
                if let Some(t) = to {
                    c.push_str(&format!(" --to {t}"));
                }
                if let Some(p) = partitions {
                    c.push_str(&format!(" --partitions {}", p.join(",")));
                }
                if *force {
                    c.push_str(" --force");
                }
                c
            }
            RunRequest::ResumeBackfill { id, .. } => format!("Backfill --resume {id}"),
            RunRequest::Units { reason, .. } => reason.clone(),
        }
    }

    /// The options of a materialize request.
    pub(crate) fn materialize_options(&self, command: &str) -> Option<MaterializeOptions> {
        if let RunRequest::Units { units, jobs, .. } = self {
            let selection: std::collections::BTreeSet<String> =
                units.iter().map(|(a, _)| a.clone()).collect();
            return Some(MaterializeOptions {
                selection: selection.into_iter().collect(),
                force: false,
                jobs: (*jobs).max(1),
                command: command.to_owned(),
                partitions: PartitionFilter::Units(units.clone()),
                backfill: None,
            });
        }
        let RunRequest::Materialize {
            selection,
            force,
            partitions,
            jobs,
        } = self
        else {
            return None;
        };
        Some(MaterializeOptions {
            selection: selection.clone(),
            force: *force,
            jobs: (*jobs).max(1),
            command: command.to_owned(),
            partitions: if partitions.is_empty() {
                PartitionFilter::All
            } else {
                PartitionFilter::Keys(partitions.clone())
            },
            backfill: None,
        })
    }

    /// The options of a backfill request.
    pub(crate) fn backfill_options(&self, command: &str) -> Option<BackfillOptions> {
        let RunRequest::Backfill {
            selection,
            from,
            to,
            partitions,
            force,
            jobs,
        } = self
        else {
            return None;
        };
        Some(BackfillOptions {
            selection: selection.clone(),
            from: from.clone(),
            to: to.clone(),
            partitions: partitions.clone(),
            force: *force,
            jobs: (*jobs).max(1),
            command: command.to_owned(),
        })
    }
}
