//! The payload ConfigMaps as the [`Sink`] of the publish step: each write is counted and its
//! size and generation exported as metrics.

use std::sync::Arc;

use gtm_crds::parts::Payload;
use k8s_openapi::api::core::v1::ConfigMap;

use super::configmaps::PayloadConfigMaps;
use crate::metrics::{KindResult, Metrics, PayloadLabel};
use crate::publish::Sink;

/// The payload ConfigMaps as one pass sees them.
pub(super) struct ConfigMapSink<'a> {
    /// Where payloads are written.
    pub(super) configmaps: &'a mut PayloadConfigMaps,
    /// The payload ConfigMaps the watch sees, to notice edits and deletions by others.
    pub(super) seen: &'a [Arc<ConfigMap>],
    /// Where writes are counted.
    pub(super) metrics: &'a Metrics,
}

impl Sink for ConfigMapSink<'_> {
    type Error = kube::Error;

    async fn write(&mut self, payload: Payload, text: &str, generation: u64) -> kube::Result<()> {
        let result = self.configmaps.write(payload, text).await;
        count(self.metrics, payload.label_value(), result.is_ok());
        result?;
        let label = PayloadLabel {
            payload: payload.label_value().into(),
        };
        self.metrics
            .payload_bytes
            .get_or_create(&label)
            .set(i64::try_from(text.len()).unwrap_or(i64::MAX));
        self.metrics
            .payload_generation
            .get_or_create(&label)
            .set(i64::try_from(generation).unwrap_or(i64::MAX));
        Ok(())
    }

    fn intact(&mut self, payload: Payload) -> bool {
        self.configmaps
            .intact(payload, self.seen.iter().map(AsRef::as_ref))
    }
}

/// Counts a reconcile pass (`kind` "all") or one write of it.
pub(super) fn count(metrics: &Metrics, kind: &str, ok: bool) {
    metrics
        .reconciles
        .get_or_create(&KindResult {
            kind: kind.into(),
            result: if ok { "ok" } else { "error" }.into(),
        })
        .inc();
}
