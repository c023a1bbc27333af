//! The topology page: a read-only web page on the operator's HTTP port that draws every access
//! domain with its pools and addresses, what is answered now and why, each task's state per
//! probe location, and the transition histories, updated live over server-sent events.
//!
//! - [`model`]: the page's data, a pure function of a [`Snapshot`] of the operator's state
//!   and the viewer's filter.
//! - [`routes`]: the HTTP side: the embedded assets, the model as JSON, and the event stream.
//!
//! The operator publishes a snapshot after every pass ([`Feed::publish`]): local mode and a
//! leader with the statuses it has just computed, a standby replica with the statuses the
//! leader last wrote (from its watch cache). Nothing on the page writes, and it shows no spec
//! field that could hold a secret (health-check headers, for one, are never shown).

pub(crate) mod model;
pub(crate) mod routes;

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::Serialize;
use tokio::sync::watch;

use crate::inventory::{Inventory, ObjectKey};
use crate::status::ObjectStatus;

pub(crate) use model::LocationResult;

/// Which process computed what the page shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(crate) enum Source {
    /// The operator in local mode.
    Local,
    /// The leader of a cluster's operators, which probes and writes the statuses.
    Leader,
    /// A standby replica: the statuses as the leader last wrote them, probe times and
    /// latencies refreshed every 30 s.
    Standby,
}

/// The results of the remote probe locations by task id (the embedded prober's are in the
/// statuses).
pub(crate) type RemoteResults = BTreeMap<String, Vec<LocationResult>>;

/// The operator's state as the page reads it.
#[derive(Clone, Debug)]
pub(crate) struct Snapshot {
    /// The objects, each with the status it had when read.
    pub inventory: Inventory,
    /// Statuses newer than the objects' own (what this process computed last), by key.
    pub statuses: BTreeMap<ObjectKey, ObjectStatus>,
    /// What the remote probe locations see.
    pub remote: RemoteResults,
    /// Who computed it.
    pub source: Source,
    /// When.
    pub taken: Time,
}

/// The latest snapshot as the page's viewers read it; `None` until the operator's first pass.
/// Their event streams end when every [`Feed`] is gone (the operator stops).
pub(crate) type Snapshots = watch::Receiver<Option<Arc<Snapshot>>>;

/// Where the operator publishes its snapshots.
#[derive(Clone)]
pub(crate) struct Feed(watch::Sender<Option<Arc<Snapshot>>>);

impl Feed {
    /// A feed without a snapshot yet.
    pub(crate) fn new() -> Self {
        Self(watch::channel(None).0)
    }

    /// Replaces the snapshot; every open page updates.
    pub(crate) fn publish(&self, snapshot: Snapshot) {
        self.0.send_replace(Some(Arc::new(snapshot)));
    }

    /// The snapshot as it changes.
    pub(crate) fn subscribe(&self) -> Snapshots {
        self.0.subscribe()
    }
}
