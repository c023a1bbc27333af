//! Test support: the spans the operator's code closes, as a `fmt` subscriber writes them.

use std::sync::{Arc, Mutex, PoisonError};

use tracing::subscriber::DefaultGuard;

/// Collects what a `fmt` subscriber writes.
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn bytes(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The lines written for closed spans so far.
    pub(crate) fn closed_spans(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.bytes())
            .lines()
            .filter(|l| l.contains("close"))
            .map(str::to_owned)
            .collect()
    }
}

/// Captures every span closed on this thread until the guard is dropped.
pub(crate) fn capture() -> (Captured, DefaultGuard) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(false)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    // A callsite another test's thread registered while this subscriber was being set may have
    // cached the interest of the dispatchers before it ("never"); recompute it for every
    // callsite now that this one is in the list, so its spans reach the capture.
    tracing::callsite::rebuild_interest_cache();
    (captured, guard)
}
