//! `gtm-operator`: reconciles `GtmAccessDomain`, `AddressPool` and `HealthCheckTemplate` into the
//! config contract the DNS pods read, and reports status.
//!
//! The pure steps (compile, evaluate, status) are plain functions over plain structs; the I/O
//! around them is thin: [`cluster`] talks to the Kubernetes API, [`local`] reads manifest files
//! and writes payload files.

pub mod cli;
pub mod cluster;
pub mod compile;
pub mod conditions;
pub mod drop_guard;
pub mod evaluate;
pub mod health;
pub mod http;
pub mod inventory;
pub mod local;
pub mod manifests;
pub mod metrics;
pub mod monitor;
pub mod payloads;
pub mod publish;
pub mod selection;
pub mod status;
