//! Integration tests: a real hookd on port 0, real SQLite files, real HTTP receivers.

// Test helpers are shared between the modules of this one binary.
#![allow(unreachable_pub)]

mod helpers;
#[path = "../common/mqtt.rs"]
mod mqtt;
mod receiver;
#[path = "../common/watchdog.rs"]
mod watchdog;

mod browser;
mod cli;
mod cli_habits;
mod conditions;
mod dashboard;
mod dashboard_scale;
mod delivery;
mod filters;
mod fleet;
mod ingest;
mod keys;
mod lifecycle;
mod listen;
mod metrics;
mod mqtt_door;
mod outcomes;
mod presence;
mod promises;
mod reshaping;
mod sources;
mod tenancy;
mod tls;
mod webhooks;
