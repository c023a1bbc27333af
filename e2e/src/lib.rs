//! End-to-end tests of kube-gtm against a real Kubernetes cluster (kind), run by `make e2e`.
//!
//! The cluster tests and their helpers (waiting for conditions, querying DNS through the kind
//! port mapping, collecting diagnostics) arrive with the Helm chart; until then this crate only
//! keeps its place in the workspace so that `cargo test -p e2e --no-run` stays part of CI.
