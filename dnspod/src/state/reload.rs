//! The reload thread: payloads are read (from files), parsed, validated and compiled on a
//! dedicated OS thread, never on the async runtime that serves TCP and HTTP (at 100 000
//! addresses a config reload is about 0.15 s of JSON parsing and engine compiling; a health
//! payload, applied as an overlay, milliseconds). The config sources stay async: they hand each
//! payload (or the read of its file) over and await its verdict, so they see the outcome of
//! every offer, in order, as if they had compiled it themselves.

use std::sync::Arc;

use gtm_crds::parts::Payload;
use tokio::sync::{mpsc, oneshot};

use super::{LoadError, Loader, Shared};

/// Work for the reload thread, run with the loader.
type Job = Box<dyn FnOnce(&mut Loader) + Send>;

/// A [`Loader`] running on its own thread. The thread ends when the `Reloader` is dropped.
#[derive(Debug)]
pub struct Reloader {
    jobs: mpsc::Sender<Job>,
    shared: Arc<Shared>,
}

impl Reloader {
    /// Moves `loader` to a new thread, `gtm-reload`.
    pub fn start(mut loader: Loader) -> Self {
        let shared = loader.shared.clone();
        // One offer at a time: a source waits for the verdict before it offers again.
        let (jobs, mut queue) = mpsc::channel::<Job>(1);
        std::thread::Builder::new()
            .name("gtm-reload".into())
            .spawn(move || {
                while let Some(job) = queue.blocking_recv() {
                    job(&mut loader);
                }
            })
            .expect("the OS refused a thread at start-up");
        Self { jobs, shared }
    }

    /// Offers a payload, as [`Loader::offer`] does, compiled on the reload thread.
    pub async fn offer(&self, payload: Payload, bytes: Vec<u8>) -> Result<bool, LoadError> {
        self.run(move |loader| loader.offer(payload, bytes)).await
    }

    /// Reads a payload with `read` on the reload thread and offers what it read (`None`:
    /// nothing to read, nothing offered). A file read here reaches the loader without a hop
    /// through another thread: on a DNS pod pinned to one shared core, every thread woken on
    /// the way from a verdict's file event to its answer may wait for the core.
    pub async fn read_and_offer<E: Send + 'static>(
        &self,
        payload: Payload,
        read: impl FnOnce() -> Result<Option<Vec<u8>>, E> + Send + 'static,
    ) -> Result<Option<Result<bool, LoadError>>, E> {
        self.run(move |loader| Ok(read()?.map(|bytes| loader.offer(payload, bytes))))
            .await
    }

    /// Runs `job` on the reload thread and returns its outcome.
    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Loader) -> T + Send + 'static,
    ) -> T {
        let (outcome, answer) = oneshot::channel();
        let job: Job = Box::new(move |loader| {
            // The source may have stopped waiting (shutdown); nothing to report to.
            let _ = outcome.send(job(loader));
        });
        let thread_gone = "the reload thread panicked";
        self.jobs.send(job).await.expect(thread_gone);
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
