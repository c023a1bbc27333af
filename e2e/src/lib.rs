//! End-to-end tests of kube-gtm against a real Kubernetes cluster (kind), run by `make e2e`
//! (`scripts/e2e.sh`), plus the helpers they stand on.
//!
//! ```text
//!  scripts/e2e.sh: kind cluster, image, helm install  ->  GTM_E2E_* env (env.rs)
//!  tests/cluster.rs    each test in its own namespace: backends (backend.rs, in the image),
//!                      examples rewritten to their pod IPs (manifests.rs), applied (cluster.rs),
//!                      wait_for conditions (wait.rs), DNS through 127.0.0.1:30053 (dns.rs),
//!                      diagnostics on failure (diag.rs)
//!  tests/lifecycle.rs  helm upgrade while answers flow, helm uninstall
//! ```
//!
//! The cluster tests are `#[ignore]`d: plain `cargo test` builds them and runs the helpers' unit
//! tests only. Run outside `make e2e` (no `GTM_E2E=1`), an ignored test prints why it skips and
//! passes.

pub mod apiserver;
pub mod backend;
pub mod browser;
pub mod cluster;
pub mod dashboard;
pub mod diag;
pub mod dig;
pub mod dns;
pub mod ds;
pub mod env;
pub mod local;
pub mod manifests;
pub mod validators;
pub mod wait;
