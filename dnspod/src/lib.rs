//! `gtm-dnspod`: the authoritative DNS half of kube-gtm. It reads the config contract of
//! [`gtm_crds::config`] and answers access domains with what policy and health allow.
//!
//! ```text
//! config_source (directory | ConfigMaps) --payload bytes--> state::Loader
//!     validate + engine::Compiled::build (config) or ::with_health (health overlay)
//!     (reload thread, off the runtime) --ArcSwap--> handler
//! handler (hickory RequestHandler, UDP + TCP): query -> engine::Compiled::answer -> response
//! http: /metrics, /healthz, /readyz (readiness: a config served, and the stale policy)
//! ```

pub mod app;
pub mod cli;
pub mod config_source;
pub mod dnssec;
pub mod dnstap;
pub mod ecs;
pub mod engine;
mod fast_path;
pub mod geoip;
pub mod handler;
pub mod http;
pub mod metrics;
pub mod query_log;
pub mod readiness;
mod record_type;
pub mod rrl;
pub mod server;
pub mod shared_pools;
pub mod sources;
pub mod state;
mod static_records;
pub mod tcp;
pub mod udp_limits;
pub mod zone;
