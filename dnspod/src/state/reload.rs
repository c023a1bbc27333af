//! The reload thread: payloads are parsed, validated and compiled on a dedicated OS thread,
//! never on the async runtime that serves TCP and HTTP (at 100 000 addresses a config reload is
//! about 0.15 s of JSON parsing and engine compiling; a health payload, applied as an overlay,
//! milliseconds). The config sources stay async: they
//! hand each payload over and await its verdict, so they see the outcome of every offer, in
//! order, as if they had compiled it themselves.

use std::sync::Arc;

use gtm_crds::parts::Payload;
use tokio::sync::{mpsc, oneshot};

use super::{LoadError, Loader, Shared};

/// One payload for the reload thread, and where its verdict goes.
struct Offer {
    payload: Payload,
    bytes: Vec<u8>,
    verdict: oneshot::Sender<Result<bool, LoadError>>,
}

/// A [`Loader`] running on its own thread. The thread ends when the `Reloader` is dropped.
#[derive(Debug)]
pub struct Reloader {
    offers: mpsc::Sender<Offer>,
    shared: Arc<Shared>,
}

impl Reloader {
    /// Moves `loader` to a new thread, `gtm-reload`.
    pub fn start(mut loader: Loader) -> Self {
        let shared = loader.shared.clone();
        // One offer at a time: a source waits for the verdict before it offers again.
        let (offers, mut queue) = mpsc::channel::<Offer>(1);
        std::thread::Builder::new()
            .name("gtm-reload".into())
            .spawn(move || {
                while let Some(offer) = queue.blocking_recv() {
                    let verdict = loader.offer(offer.payload, offer.bytes);
                    // The source may have stopped waiting (shutdown); nothing to report to.
                    let _ = offer.verdict.send(verdict);
                }
            })
            .expect("the OS refused a thread at start-up");
        Self { offers, shared }
    }

    /// Offers a payload, as [`Loader::offer`] does, compiled on the reload thread.
    pub async fn offer(&self, payload: Payload, bytes: Vec<u8>) -> Result<bool, LoadError> {
        let (verdict, answer) = oneshot::channel();
        let offer = Offer {
            payload,
            bytes,
            verdict,
        };
        let thread_gone = "the reload thread panicked";
        self.offers.send(offer).await.expect(thread_gone);
        answer.await.expect(thread_gone)
    }

    /// Counts a payload the source could not even assemble (e.g. missing ConfigMap parts) as
    /// refused.
    pub fn refuse(&self, payload: Payload) {
        self.shared.metrics.reload_failed(payload);
    }

    /// Counts a payload the source failed to read (it retries).
    pub fn read_failed(&self, payload: Payload) {
        self.shared.metrics.payload_read_failed(payload);
    }
}
