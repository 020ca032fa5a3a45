//! The hookd domain, free of I/O.
//!
//! # Layout
//!
//! - [`record`]: the two record kinds producers send (data points and events), parsed and
//!   validated with a field path for every error.
//! - [`webhook`]: a customer's subscription (`WebhookSpec`), its validation, and the
//!   [`filter`] that decides which records reach it.
//! - [`retry`]: the retry schedule and the jittered next delay, a pure function.
//! - [`outcome`]: the delivery contract's outcome table — what a receiver's answer means.
//! - [`seal`]: encryption of webhooks' secrets at rest (AES-256-GCM, rotating keys).
//! - [`signature`]: Standard Webhooks signing and `whsec_` secrets.
//! - [`store`]: the storage contract every backend implements. Only backends contain SQL.
//! - [`clock`]: the time source, real or manual (tests step it).
//! - `conformance` (feature): the behaviour every [`store::Store`] must show, as tests.

pub mod clock;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod duration;
pub mod filter;
pub mod id;
pub mod outcome;
pub mod record;
pub mod retry;
pub mod seal;
pub mod signature;
pub mod source;
pub mod store;
pub mod timefmt;
pub mod validation;
pub mod webhook;

pub use clock::{Clock, ManualClock, SystemClock};
pub use validation::ValidationError;
