//! `gtm-operator`: reconciles `GtmAccessDomain`, `AddressPool` and `HealthCheckTemplate` into the
//! config contract the DNS pods read, and reports status.
//!
//! The pure steps (compile, evaluate, status) are plain functions over plain structs; the I/O
//! around them is thin: [`cluster`] talks to the Kubernetes API, [`local`] reads manifest files
//! and writes payload files.

pub mod agent;
pub mod cli;
pub mod cluster;
pub mod compile;
mod conditions;
pub mod discovery;
mod drop_guard;
pub mod endpoints;
mod evaluate;
mod health;
mod history;
mod http;
mod inventory;
pub mod local;
mod locations;
pub mod manifests;
mod metrics;
mod monitor;
mod page;
mod payloads;
mod publish;
mod selection;
mod serials;
#[cfg(test)]
mod spans;
mod status;
mod zone_keys;
