//! Probes and the scheduler against real listeners on 127.0.0.1.

mod http;
mod https;
mod icmp;
mod scheduler;
mod support;
mod tcp;
