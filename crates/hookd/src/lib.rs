//! hookd: a webhook gateway in one binary.
//!
//! # Layout
//!
//! - [`app`]: start-up and graceful shutdown; what `main` and the tests run.
//! - [`config`]: settings, layered and validated once.
//! - [`api`]: the HTTP API, one module per resource: parse, call [`service`], render.
//! - [`dashboard`]: the dashboard at `/`: server-rendered pages over the same [`service`]
//!   operations, sign-ins and portal links.
//! - [`service`]: the operations every door shares, on workspaces, webhooks, deliveries and
//!   records.
//! - [`ingest`]: group commit of ingested records and their planned deliveries.
//! - [`planner`]: which webhooks get which records, from the cached registry of webhooks.
//! - [`slots`]: the ledger of attempts in flight, shared by the committer's hand-off and the
//!   dispatcher.
//! - [`dispatch`]: claiming, sending, classifying and recording deliveries.
//! - [`mqtt`]: the MQTT door: a broker's messages ingested as records, acknowledged once
//!   committed.
//! - [`presence`]: the sweep that turns devices' silence and their own connection events into
//!   `device.offline` / `device.online` events.
//! - [`retention`]: pruning what is old enough.
//! - [`sandbox`]: sources' jq programs, run in worker processes with time and memory limits.
//! - [`metrics`], [`telemetry`]: Prometheus metrics and logs.
//! - [`cli`]: the command line.

pub mod admin_key;
pub mod api;
pub mod app;
pub mod cli;
pub mod client;
pub mod config;
pub mod dashboard;
pub mod dispatch;
pub mod ingest;
pub mod metrics;
pub mod model;
pub mod mqtt;
pub mod planner;
pub mod presence;
pub mod retention;
pub mod sandbox;
pub mod service;
pub mod slots;
pub mod telemetry;

pub use app::{App, Dispatch};
pub use config::Settings;
