//! Where payloads come from: a directory in local mode ([`dir`]), ConfigMaps through the
//! Kubernetes API in a cluster ([`kube`]). Both hand whole payloads to a
//! [`crate::state::Loader`], which validates, compiles and swaps them in.

pub mod dir;
pub mod kube;
pub mod payload_file;
