//! Black-box tests: a real server on 127.0.0.1:0, driven through the
//! generated gRPC client. One binary, one module per area.

mod auth;
mod checkpoints;
mod cli;
mod cloudevents_http;
mod common;
mod config;
mod crash;
mod dedup;
mod disk_full;
mod faults;
mod groups;
mod health;
mod http;
mod limits;
mod metrics;
mod postgres;
mod publish;
mod publish_stream;
mod read;
mod repository;
mod restart;
mod retention;
mod storage;
mod streams;
mod subscribe;
mod tls;
mod tracing;
mod transport;
mod trim_take;
