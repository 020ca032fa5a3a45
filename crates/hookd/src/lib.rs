//! hookd: a webhook gateway in one binary.
//!
//! # Layout
//!
//! - [`app`]: start-up and graceful shutdown; what `main` and the tests run.
//! - [`config`]: settings, layered and validated once.
//! - [`api`]: the HTTP API, one module per resource.
//! - [`ingest`]: group commit of ingested records and their deliveries.
//! - [`dispatch`]: claiming, sending, classifying and recording deliveries.
//! - [`retention`]: pruning what is old enough.
//! - [`metrics`], [`telemetry`]: Prometheus metrics and logs.
//! - [`cli`]: the command line.

pub mod admin_key;
pub mod api;
pub mod app;
pub mod cli;
pub mod client;
pub mod config;
pub mod dispatch;
pub mod ingest;
pub mod metrics;
pub mod model;
pub mod retention;
pub mod service;
pub mod telemetry;

pub use app::{App, Dispatch};
pub use config::Settings;
