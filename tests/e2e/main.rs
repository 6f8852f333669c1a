//! End-to-end tests: the real `cairn` binary on real projects, real
//! DataFusion, real Parquet files and a real SQLite catalog.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod alerts;
mod audit;
mod automation;
mod azure;
mod bad_input;
mod ballista;
mod crash;
mod examples;
mod explain;
mod external_reader;
mod failures;
mod flight_sql;
mod freshness;
mod http_receiver;
mod memory;
mod metadata;
mod openlineage;
mod partitions;
mod postgres;
mod quality;
mod queue;
mod remote;
mod reproducible;
mod retries;
mod row_changes;
mod s3;
mod self_dependent;
mod serve;
mod serve_auth;
mod server;
mod spine;
mod tokens;
mod util;
mod web_api;
mod web_page;
