//! `cairn-assets` owns the declaration model — sources, SQL assets and their
//! configuration — and the project loader that reads `cairn.toml` and the
//! asset files. Dependencies between assets are *inferred* from the table
//! references of each asset's SELECT, parsed with DataFusion's SQL parser.
//!
//! Invariant: plain values and parsing only. Nothing here is async, and the
//! only I/O is reading the project's own files. Every mistake a user can make
//! in a project is reported as a [`Diagnostic`] naming file and line, with a
//! hint where one helps.
#![deny(missing_docs)]

mod automation;
pub mod checks;
mod config;
mod diagnostic;
mod duration;
mod header;
mod names;
mod parse_cache;
mod partition_config;
pub mod partitions;
mod project;
mod sql;
mod stamp;

pub use automation::{Automation, CatchUp, CronSchedule, FreshnessSla, RetryPolicy};
pub use config::{
    AlertConfig, AlertEvent, AlertFormat, CatalogConfig, CostConfig, DEFAULT_QUERY_TIMEOUT_SECONDS,
    DEFAULT_SCHEDULER_PORT, EngineConfig, MIN_MEMORY_LIMIT, OpenLineageConfig, ProjectConfig,
    RetentionConfig, Role, ServerConfig, StorageConfig, TokenConfig, parse_memory_size,
};
pub use diagnostic::{Diagnostic, ProjectError};
pub use names::{closest_name, is_valid_name};
pub use parse_cache::CACHE_FILE as PARSE_CACHE_FILE;
pub use project::{DeclaredColumn, DeclaredColumns, Project, Source, SourceFormat, SqlAsset};
pub use sql::{
    ParsedQuery, UnboundPlaceholder, bind_placeholders, parse_asset_sql, with_stand_ins,
};
pub use stamp::ProjectStamp;
