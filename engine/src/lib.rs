//! `cairn-engine` turns a project into committed data. It owns the asset
//! graph, versions and staleness, planning, execution through DataFusion
//! and object-store I/O. Front ends go through one boundary: the
//! [`Workspace`] methods of `api.rs`.
//!
//! ```text
//!  Project (cairn-assets) ──► Workspace::open ──► Snapshot: code / source /
//!                                                input versions + catalog's
//!                                                current versions
//!                                                   │ assess()  (pure)
//!                                                   ▼
//!                      per-asset AssetStatus (fresh | stale: StaleCause)
//!                                                   │ plan()  (pure)
//!                                                   ▼
//!            Plan: per unit a Decision (build | build unless upstream
//!            unchanged | forced | fresh) — what `--explain` shows
//!                                                   │ Workspace::materialize
//!                                                   ▼
//!   schedule (topological, --jobs) ─► just before each unit: recompute its
//!   input version from upstream *data* versions; unchanged ⇒ early cutoff
//!                                                   │ else
//!                                                   ▼
//!   DataFusion (one partition: reproducible; planned here, executed here
//!   or on a Ballista cluster, `[engine] url`) ─► hash rows (data version,
//!   row changes) ─► checks on the written file ─► new immutable Parquet
//!                                                   │
//!                                                   ▼
//!           Catalog::commit_materialization (one transaction) ─► visible
//! ```
//!
//! The nouns: [`Workspace`], [`Snapshot`], [`AssetStatus`], [`StaleCause`],
//! [`Plan`], [`Decision`], [`RunReport`], [`Materialized`].
//!
//! Invariants: readers resolve files only through the catalog, so a file
//! is visible only once its commit succeeded; nothing stale means no
//! DataFusion session is created at all; the engine never writes SQL for
//! the catalog; time comes from the injected [`Clock`]. The modules are
//! layered (see ARCHITECTURE.md), each importing only from the layers
//! before it, as `layering.rs` checks.
#![deny(missing_docs)]

// Layers: each imports only from the ones listed before it (checked by
// `layering::tests`). `api` (the facade) may use all of them.
mod alerts;
mod api;
mod automation;
mod compile;
mod error;
mod execute;
#[cfg(test)]
mod layering;
mod lineage;
mod model;
mod plan;
mod quality;
mod queue;
mod records;
mod session;
mod state;

pub use alerts::deliver::{DeliveryPolicy, DeliveryReport};
pub use api::migrate_catalog;
pub use automation::{ConditionResult, TickReport};
pub use cairn_catalog::{
    AlertDeliveryCounts, BackfillId, CatalogCopy, RunId, RunRecord, RunStatus,
};
pub use error::EngineError;
pub use execute::backfill::{BackfillOptions, BackfillReport};
pub use execute::build::failed_checks;
pub use execute::control::{Pools, RunContext, RunControl, Stop};
pub use execute::recheck::CheckReport;
pub use execute::report::{
    AssetOutcome, AssetResult, Materialized, NoProgress, Progress, RunEvent, RunReport,
};
pub use lineage::column_lineage::{ColumnNode, LineageKind};
pub use model::graph::{AssetGraph, Neighbourhood, NodeKind};
pub use model::version::short as short_version;
pub use model::workspace::{Clock, DefinitionsCache, Failpoints, PauseHook, Workspace};
pub use plan::{Decision, MaterializeOptions, PartitionFilter, Plan, PlannedUnit};
pub use quality::checks::CheckOutcome;
pub use queue::feed::{BackfillCounts, RunUpdate, RunWatch, UnitOutcome, UpdateKind};
pub use queue::request::RunRequest;
pub use queue::{QueueSettings, RunQueue, Submitted};
pub use records::cost::{AssetCost, CostFigures};
pub use records::details::AssetDetails;
pub use records::gc::GcReport;
pub use records::metadata_tables::{SCHEMA as METADATA_SCHEMA, TABLES as METADATA_TABLES};
pub use records::provenance::Provenance;
pub use records::time_travel::AsOf;
pub use state::committed::{Committed, VersionText};
pub use state::freshness::{Health, OverduePartition, SlaBasis, SlaLevel, SlaMiss, SlaReading};
pub use state::snapshot::{Snapshot, SnapshotTimings};
pub use state::status::{AssetState, AssetStatus, PartitionStatus, PartitionSummary, StaleCause};

/// Internals the benchmarks time piece by piece (planning, sessions, check
/// queries, hashing). Not an API: front ends use [`Workspace`].
#[doc(hidden)]
pub mod bench {
    pub use crate::automation::{last_tick_at, tick};
    pub use crate::compile::{output_schemas, validate_before_run};
    pub use crate::execute::parquet_settings::{float_columns, output_writer_properties};
    pub use crate::model::storage::CommittedFile;
    pub use crate::model::units::Unit;
    pub use crate::model::version::{UpstreamInput, input_version};
    pub use crate::plan::plan;
    pub use crate::quality::checks::{failing_rows_sql, run_checks};
    pub use crate::session::tables::{new_session, read_only, register_committed};

    use std::sync::Arc;

    /// The workspace's catalog (the partitions benchmark seeds it).
    pub fn catalog(ws: &crate::Workspace) -> &Arc<dyn cairn_catalog::Catalog> {
        &ws.catalog
    }

    /// The workspace's storage (sessions for replayed check queries).
    pub fn storage(ws: &crate::Workspace) -> &crate::model::storage::Storage {
        &ws.storage
    }
}
