//! riverlog: a gRPC event log service.
//!
//! Services publish CloudEvents to named streams and read them back as
//! history or as live subscriptions.
//!
//! # Layout
//! - [`proto`]: code generated from `proto/riverlog/v1` (package `riverlog.v1`).
//! - [`api`]: the gRPC services; transport only, errors mapped in `api::status`.
//! - [`log`]: the domain: names, validation, the group-commit writer, the
//!   in-memory hub and subscriptions.
//! - [`storage`]: the storage trait and its SQLite backend.
//! - [`config`], [`telemetry`], [`server`]: flags, logging, and the
//!   application that wires it all and shuts it down gracefully.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod log;
pub mod metrics;
pub mod model;
pub mod proto;
pub mod server;
pub mod service;
pub mod storage;
pub mod telemetry;
pub mod tls;
