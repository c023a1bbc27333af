//! Where payloads come from: a directory in local mode ([`dir`]), ConfigMaps through the
//! Kubernetes API in a cluster ([`kube`]). Both hand whole payloads to a
//! [`crate::state::Loader`] on its own thread ([`crate::state::Reloader`]), which validates,
//! compiles and swaps them in off the async runtime.

pub mod dir;
pub mod kube;
pub mod payload_file;
