//! `cairn-engine` turns a project into committed data. It owns the asset
//! graph, versions and staleness, planning, execution through DataFusion
//! and object-store I/O.
//!
//! ```text
//!  Project (cairn-assets) ──► AssetGraph ──► Snapshot: code / source / input
//!                                            versions + catalog's current
//!                                                   │ assess()  (pure)
//!                                                   ▼
//!                      per-asset AssetStatus (fresh | stale: causes)
//!                                                   │ materialize()
//!                                                   ▼
//!   schedule (topological, --jobs) ─► just before each asset: recompute its
//!   input version from upstream *data* versions; unchanged ⇒ early cutoff
//!                                                   │ else
//!                                                   ▼
//!   DataFusion plan ─► execute stream ─► hash rows (data version)
//!                                    └─► new immutable Parquet file(s)
//!                                                   │
//!                                                   ▼
//!           Catalog::commit_materialization (one transaction) ─► visible
//! ```
//!
//! Invariants: readers resolve files only through the catalog, so a file
//! is visible only once its commit succeeded; nothing stale means no
//! DataFusion session is created at all; the engine never writes SQL for
//! the catalog.
#![deny(missing_docs)]

pub mod audit;
pub mod backfill;
pub mod checks;
pub mod column_lineage;
pub mod committed;
pub mod committed_table;
pub mod compile;
pub mod cost;
pub mod declared;
mod error;
pub mod graph;
mod lineage_events;
pub mod metadata_tables;
pub mod metering;
pub mod openlineage;
pub mod partition_guard;
pub mod partition_index;
pub mod plan;
pub mod provenance;
mod query;
pub mod recheck;
mod row_changes;
pub mod run;
pub mod selection;
pub mod sources;
pub mod status;
pub mod storage;
pub mod tables;
pub mod units;
pub mod version;
mod whoami;
mod workspace;

pub use backfill::{BackfillOptions, BackfillReport};
pub use column_lineage::ColumnNode;
pub use cost::AssetCost;
pub use error::EngineError;
pub use graph::AssetGraph;
pub use graph::NodeKind;
pub use plan::{Decision, Plan, PlannedUnit};
pub use provenance::{AsOf, Provenance};
pub use recheck::CheckReport;
pub use run::failed_checks;
pub use run::{
    AssetOutcome, AssetResult, MaterializeOptions, PartitionFilter, Progress, RunEvent, RunReport,
};
pub use status::{AssetState, AssetStatus, PartitionStatus, PartitionSummary, StaleCause};
pub use version::short as short_version;
pub use workspace::{AssetDetails, Snapshot, Workspace};
