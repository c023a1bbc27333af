//! Local mode: `config.json` and `health.json` in one directory, followed with inotify (via
//! `notify`). Writers replace the files atomically by rename; every event in the directory that
//! may change a file re-reads both files, and the loader ignores unchanged bytes. Access events
//! (open, read, close without writing) are ignored: reading the files raises them, so following
//! them would re-read the directory in a busy loop.

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
        // Any change (or error) is a reason to look again; the loader sorts out the rest.
        if may_change(&event) {
            let _ = tx.send(event.is_ok());
        }
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

/// Whether an event may mean a changed file: everything but accesses, which our own reads
/// cause; closing a file written in place counts (the write is complete then).
fn may_change(event: &notify::Result<notify::Event>) -> bool {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode};
    match event {
        Ok(e) => match e.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
            EventKind::Access(_) => false,
            _ => true,
        },
        Err(_) => true,
    }
}

/// Offers both payload files that exist (a missing file is not an error: the writer may not
/// have produced it yet). Health first: at start-up the loader keeps it until the config comes,
/// and compiles once instead of twice (at 100 000 addresses, two compiled snapshots at once
/// would double the peak memory).
async fn load_all(dir: &Path, loader: &mut Loader) {
    for payload in [Payload::Health, Payload::Config] {
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

#[cfg(test)]
mod tests {
    use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
    use notify::{Event, EventKind};

    use super::may_change;

    #[test]
    fn reads_do_not_trigger_a_reload_but_changes_and_errors_do() {
        let event = |kind| Ok(Event::new(kind));
        for access in [
            AccessKind::Open(AccessMode::Any),
            AccessKind::Read,
            AccessKind::Close(AccessMode::Read),
        ] {
            assert!(!may_change(&event(EventKind::Access(access))));
        }
        for change in [
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Remove(notify::event::RemoveKind::File),
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
        ] {
            assert!(may_change(&event(change)), "{change:?}");
        }
        assert!(may_change(&Err(notify::Error::generic("overflow"))));
    }
}
