//! riverlog: a gRPC event log service.
//!
//! Services publish CloudEvents to named streams and read them back as
//! history or as live subscriptions.
//!
//! # Layout
//! Dependencies point down this list; nothing imports upwards.
//! - [`api`] (gRPC) and [`http`] (JSON API, CloudEvents over HTTP, SSE, the
//!   console): transports. Each decodes, calls [`log`], encodes; neither
//!   imports the other. [`cli`] is a client of the gRPC API.
//! - [`service`]: what every transport shares: error classification
//!   (`service::failure`), call admission (rate limits, subscription slots,
//!   event checks), trace context, domain/wire conversions
//!   (`service::convert`).
//! - [`proto`]: code generated from `proto/riverlog/v1` (package
//!   `riverlog.v1`), its JSON and view forms; it imports no domain code.
//! - [`log`]: the domain: the [`log::EventLog`] operations (which take
//!   the caller and names parsed at the edge by [`log::parse`], and check
//!   the caller first with [`log::access`]), the group-commit writer,
//!   consumer groups, checkpoints, the live hub, subscriptions,
//!   retention, and the last hour's throughput and group backlog
//!   (`log::history`).
//! - [`storage`]: the storage contract ([`storage::Storage`],
//!   [`storage::WriteTx`]), its SQL written once for SQLite and PostgreSQL.
//! - [`model`]: the ground floor domain and storage share: names, records,
//!   query shapes, filters, the storage error.
//! - [`auth`], [`config`], [`metrics`], [`telemetry`], [`tls`], [`server`]:
//!   tokens and permissions, settings, metrics, logging and tracing, TLS,
//!   and the application that wires it all and shuts it down gracefully.

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
