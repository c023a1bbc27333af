//! Local mode: `config.json` and `health.json` in one directory, followed with inotify (via
//! `notify`). Writers replace the files atomically by rename; every event in the directory
//! re-reads both files, and the loader ignores unchanged bytes.

use std::io;
use std::path::{Path, PathBuf};

use gtm_crds::parts::Payload;
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::state::Loader;

/// Why the directory cannot be followed.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    /// The watch could not be set up.
    #[error("watching {dir}: {source}")]
    Watch {
        /// The directory.
        dir: PathBuf,
        /// The cause.
        source: notify::Error,
    },
}

/// Loads the payloads in `dir` now and after every change, until `shutdown`.
pub async fn follow(
    dir: PathBuf,
    mut loader: Loader,
    shutdown: CancellationToken,
) -> Result<(), DirError> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Any event (or error) is a reason to look again; the loader sorts out the rest.
        let _ = tx.send(event.is_ok());
    })
    .and_then(|mut w| w.watch(&dir, RecursiveMode::NonRecursive).map(|()| w))
    .map_err(|source| DirError::Watch {
        dir: dir.clone(),
        source,
    })?;
    tracing::info!(dir = %dir.display(), "following payload files");
    load_all(&dir, &mut loader).await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            event = rx.recv() => {
                if event.is_none() {
                    break;
                }
                while rx.try_recv().is_ok() {}
                load_all(&dir, &mut loader).await;
            }
        }
    }
    watcher.unwatch(&dir).ok();
    Ok(())
}

/// Offers both payload files that exist (a missing file is not an error: the writer may not
/// have produced it yet).
async fn load_all(dir: &Path, loader: &mut Loader) {
    for payload in Payload::ALL {
        let path = dir.join(payload.key());
        match tokio::fs::read(&path).await {
            Ok(bytes) => {
                // A refusal is logged and counted by the loader.
                let _ = loader.offer(payload, &bytes);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(error) => tracing::warn!(path = %path.display(), %error, "cannot read payload"),
        }
    }
}
