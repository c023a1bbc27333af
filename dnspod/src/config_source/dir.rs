//! Local mode: `config.json` and `health.json` in one directory, followed with inotify (via
//! `notify`). Writers replace the files atomically by rename; every event on a payload file
//! (or on an entry whose name starts with `..`, as the `..data` link a Kubernetes volume swaps)
//! that may change it re-reads the files, and the loader ignores unchanged bytes. Events on the
//! directory's other files are ignored: the operator's `status.json` beside the payloads in
//! local mode, a writer's temporary file until it is renamed onto a payload's name. So are
//! access events (open, read, close without writing): reading the files raises them, so
//! following them would re-read the directory in a busy loop.
//!
//! The path is followed, not the directory it named at start-up: the parent directory is
//! watched too, and when the path names another directory (`mv dir dir.old; mkdir dir`, a
//! symbolic link pointed elsewhere) the watch moves to it. An event re-reads only the files
//! whose stamp ([`FileStamp`]: inode, size, times) changed since they were last read, so that a
//! verdict written to `health.json` does not re-read a `config.json` of tens of megabytes.
//! A periodic rescan ([`FollowOptions::rescan`]) is the safety net behind the watch: it
//! catches what no event reports (a replaced parent, a lost event, a write in place through a
//! path nobody watches) by the same stamps, so it too reads only the files that changed since
//! they were last read. A stamp taken less than [`SETTLED_AFTER`] after the file's last change
//! is not trusted by the rescan, which reads that file once more: a write in place of the same
//! size within the timestamps' granularity leaves the stamp as it was. Reading an unchanged
//! file changes nothing (the loader compares digests), but at 100 000 addresses it costs the
//! read and digest of an 18 MB `config.json` on the DNS pod's core, which a verdict arriving
//! meanwhile waited behind (35 ms instead of 5). SIGHUP ([`follow`]'s `reload`) and a retry
//! after a failed read still read both files whatever their stamps. A read that
//! fails (descriptor limit, I/O error) is counted and retried with backoff; a file that is not
//! a regular file or is too large is refused once (see [`super::payload_file`]).

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use gtm_crds::parts::Payload;
use notify::{RecursiveMode, Watcher};
use tokio::sync::{Notify, mpsc};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::payload_file::{DEFAULT_MAX_PAYLOAD_BYTES, FileStamp, read_payload};
use crate::state::{Loader, Reloader};

/// First wait before a failed read is retried; it doubles up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(100);
/// Longest wait between retries of a failed read.
const RETRY_MAX: Duration = Duration::from_secs(5);
/// How long after a file's last change its stamp is trusted by the rescan: longer than the
/// granularity of any file system's timestamps (one second on the coarsest).
const SETTLED_AFTER: Duration = Duration::from_secs(2);

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
    /// The path could not be made absolute.
    #[error("resolving {dir}: {source}")]
    Path {
        /// The directory.
        dir: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// How the directory is followed.
#[derive(Clone, Debug)]
pub struct FollowOptions {
    /// Interval of the rescan that backs up the watch.
    pub rescan: Duration,
    /// Largest payload file read; larger ones are refused.
    pub max_payload_bytes: u64,
}

impl Default for FollowOptions {
    fn default() -> Self {
        Self {
            rescan: Duration::from_secs(10),
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
        }
    }
}

/// Loads the payloads in `dir` now, after every change, every [`FollowOptions::rescan`] and
/// whenever `reload` is notified (SIGHUP), until `shutdown`; `loader` runs on its own thread
/// ([`Reloader`]).
pub async fn follow(
    dir: PathBuf,
    loader: Loader,
    options: FollowOptions,
    reload: Arc<Notify>,
    shutdown: CancellationToken,
) -> Result<(), DirError> {
    // Absolute, so that event paths (the watched path joined with a name) compare equal.
    let dir = std::path::absolute(&dir).map_err(|source| DirError::Path {
        dir: dir.clone(),
        source,
    })?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let filter_dir = dir.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Any change (or error) is a reason to look again; the loader sorts out the rest.
        if concerns(&filter_dir, &event) {
            let _ = tx.send(());
        }
    })
    .map_err(|source| DirError::Watch {
        dir: dir.clone(),
        source,
    })?;
    let mut watched = PathWatch::new(dir.clone());
    watched
        .rearm(&mut watcher)
        .map_err(|source| DirError::Watch {
            dir: dir.clone(),
            source,
        })?;
    let mut parent = dir.parent().map(|p| PathWatch::new(p.to_path_buf()));
    tracing::info!(dir = %dir.display(), "following payload files");

    let mut reader = Reader::new(dir.clone(), options.max_payload_bytes);
    let loader = Reloader::start(loader);
    let mut retry = reader.load_all(&loader, Reread::All).await;
    let mut rescan = tokio::time::interval_at(Instant::now() + options.rescan, options.rescan);
    rescan.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let retry_at = retry;
        let reread = tokio::select! {
            _ = shutdown.cancelled() => break,
            event = rx.recv() => {
                if event.is_none() {
                    break;
                }
                while rx.try_recv().is_ok() {}
                Reread::Changed
            }
            _ = rescan.tick() => Reread::Rescan,
            () = reload.notified() => {
                tracing::info!(dir = %dir.display(), "re-reading payload files");
                Reread::All
            }
            () = sleep_until(retry_at) => Reread::All,
        };
        for watch in std::iter::once(&mut watched).chain(parent.as_mut()) {
            if let Err(error) = watch.rearm(&mut watcher) {
                tracing::warn!(path = %watch.path.display(), %error, "cannot watch; the rescan still follows it");
            }
        }
        retry = reader.load_all(&loader, reread).await;
    }
    Ok(())
}

/// Which payload files a pass reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reread {
    /// Those whose stamp changed since they were last read (after an event).
    Changed,
    /// Those whose stamp changed, or was taken too soon after the file's last change to tell
    /// it from a later write in place (the periodic rescan).
    Rescan,
    /// Both (at start-up, on SIGHUP, on a retry).
    All,
}

impl Reread {
    /// Whether this pass skips a file whose stamp is `now`, last read as `read`.
    fn skips(self, now: Option<&FileStamp>, read: Option<&ReadStamp>) -> bool {
        let (Some(now), Some(read)) = (now, read) else {
            return false;
        };
        *now == read.stamp
            && match self {
                Self::Changed => true,
                Self::Rescan => read.settled,
                Self::All => false,
            }
    }
}

/// A file's stamp when it was last read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ReadStamp {
    stamp: FileStamp,
    /// Whether the file had last changed at least [`SETTLED_AFTER`] before the stamp was taken.
    settled: bool,
}

impl ReadStamp {
    /// `stamp`, taken at `now`.
    fn taken(stamp: FileStamp, now: SystemTime) -> Self {
        Self {
            stamp,
            settled: now
                .checked_sub(SETTLED_AFTER)
                .is_some_and(|t| stamp.changed_before(t)),
        }
    }
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Whether an event may mean a changed payload in `dir`: a change of a payload file in `dir`
/// ([`may_name_a_payload`]) or of `dir` itself (reported by the parent's watch), or an error.
fn concerns(dir: &Path, event: &notify::Result<notify::Event>) -> bool {
    may_change(event)
        && event.as_ref().map_or(true, |e| {
            // Events without paths (a queue overflow) concern everything.
            e.paths.is_empty()
                || e.paths
                    .iter()
                    .any(|p| p == dir || (p.parent() == Some(dir) && may_name_a_payload(p)))
        })
}

/// Whether an entry's name may be, or lead to, a payload file: a payload's own name, or a name
/// starting with `..`, as the entries through which a Kubernetes volume's atomic writer swaps
/// every file at once (`config.json` links to `..data/config.json`, and `..data` is replaced).
fn may_name_a_payload(path: &Path) -> bool {
    path.file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.starts_with("..") || Payload::ALL.iter().any(|p| p.key() == name))
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

/// A watched path and the directory (device, inode) it named when the watch was set.
struct PathWatch {
    path: PathBuf,
    identity: Option<(u64, u64)>,
}

impl PathWatch {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            identity: None,
        }
    }

    /// Moves the watch to what the path names now, if that changed. Looked up before the watch
    /// is set: should the path change in between, the next call sees a difference again.
    fn rearm(&mut self, watcher: &mut impl Watcher) -> notify::Result<()> {
        let now = std::fs::metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if now == self.identity {
            return Ok(());
        }
        if self.identity.take().is_some() {
            // The old directory may be gone, and its watch with it.
            let _ = watcher.unwatch(&self.path);
        }
        if now.is_some() {
            watcher.watch(&self.path, RecursiveMode::NonRecursive)?;
            self.identity = now;
        }
        Ok(())
    }
}

/// Reads the payload files of one directory and offers them to the loader.
struct Reader {
    dir: PathBuf,
    max_bytes: u64,
    backoff: Backoff,
    /// Per payload file, the refusal last reported, so that a rescan does not report it again.
    refused: BTreeMap<&'static str, String>,
    /// Per payload file, its stamp when it was last read.
    stamps: BTreeMap<&'static str, ReadStamp>,
}

impl Reader {
    fn new(dir: PathBuf, max_bytes: u64) -> Self {
        Self {
            dir,
            max_bytes,
            backoff: Backoff::new(RETRY_FIRST, RETRY_MAX),
            refused: BTreeMap::new(),
            stamps: BTreeMap::new(),
        }
    }

    /// Offers both payload files that exist (a missing file is not an error: the writer may not
    /// have produced it yet). Health first: at start-up the loader keeps it until the config
    /// comes, and compiles once instead of twice (at 100 000 addresses, two compiled snapshots
    /// at once would double the peak memory). Returns when to retry a read that failed.
    async fn load_all(&mut self, loader: &Reloader, reread: Reread) -> Option<Instant> {
        let mut failed = false;
        for payload in [Payload::Health, Payload::Config] {
            let path = self.dir.join(payload.key());
            // Taken before the read: should the file change in between, the next event finds
            // a stamp that differs and reads it again.
            let stamp = FileStamp::at(&path);
            let taken = SystemTime::now();
            if reread.skips(stamp.as_ref(), self.stamps.get(payload.key())) {
                continue;
            }
            let limit = self.max_bytes;
            let read_path = path.clone();
            // Read on the reload thread, which loads what it read: no thread in between.
            // A refusal by the loader is logged and counted there.
            let result = loader
                .read_and_offer(payload, move || read_payload(&read_path, limit))
                .await;
            match result {
                Ok(_) => {
                    self.refused.remove(payload.key());
                    match stamp {
                        Some(stamp) => self
                            .stamps
                            .insert(payload.key(), ReadStamp::taken(stamp, taken)),
                        None => self.stamps.remove(payload.key()),
                    };
                }
                Err(error) if error.is_transient() => {
                    failed = true;
                    tracing::warn!(path = %path.display(), %error, "cannot read payload; retrying");
                    loader.read_failed(payload);
                }
                Err(error) => {
                    let message = error.to_string();
                    if self.refused.get(payload.key()) != Some(&message) {
                        tracing::error!(path = %path.display(), %error, "payload file refused; the last good one keeps serving");
                        loader.refuse(payload);
                        self.refused.insert(payload.key(), message);
                    }
                }
            }
        }
        if failed {
            Some(Instant::now() + self.backoff.next())
        } else {
            self.backoff.reset();
            None
        }
    }
}

/// Waits that double from `first` up to `max`.
#[derive(Debug)]
struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            next: first,
        }
    }

    /// The wait before the next attempt.
    fn next(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    /// Back to the first wait after a success.
    fn reset(&mut self) {
        self.next = self.first;
    }
}

#[cfg(test)]
mod tests {
    use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
    use notify::{Event, EventKind};

    use super::*;

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

    #[test]
    fn events_of_the_directory_and_its_payloads_concern_it_but_not_those_of_other_files() {
        let dir = Path::new("/srv/gtm");
        let created = |path: &str| {
            Ok(Event::new(EventKind::Create(CreateKind::Any)).add_path(PathBuf::from(path)))
        };
        assert!(concerns(dir, &created("/srv/gtm")));
        assert!(concerns(dir, &created("/srv/gtm/config.json")));
        assert!(concerns(dir, &created("/srv/gtm/health.json")));
        // A Kubernetes volume swapping its files at once.
        assert!(concerns(dir, &created("/srv/gtm/..data")));
        assert!(concerns(
            dir,
            &created("/srv/gtm/..2026_11_30_10_50_00.123")
        ));
        assert!(!concerns(dir, &created("/srv/other")));
        assert!(!concerns(dir, &created("/srv/gtm.old/config.json")));
        // The operator's status beside the payloads in local mode; a writer's temporary file.
        assert!(!concerns(dir, &created("/srv/gtm/status.json")));
        assert!(!concerns(dir, &created("/srv/gtm/.config.json.tmp")));
        // Renamed onto a payload's name: the event names both.
        let renamed = Event::new(EventKind::Modify(ModifyKind::Name(RenameMode::Both)))
            .add_path(PathBuf::from("/srv/gtm/.config.json.tmp"))
            .add_path(PathBuf::from("/srv/gtm/config.json"));
        assert!(concerns(dir, &Ok(renamed)));
        assert!(concerns(dir, &Ok(Event::new(EventKind::Other))));
        assert!(concerns(dir, &Err(notify::Error::generic("overflow"))));
    }

    #[test]
    fn a_pass_skips_a_file_read_before_only_as_its_kind_allows() {
        let tmp = super::super::payload_file::scratch("dir-skips");
        let path = tmp.join("config.json");
        std::fs::write(&path, b"{}").unwrap();
        let stamp = FileStamp::at(&path).unwrap();
        std::fs::write(&path, b"{ }").unwrap();
        let other = FileStamp::at(&path).unwrap();
        std::fs::remove_dir_all(tmp).unwrap();
        let now = SystemTime::now();
        let settled = ReadStamp::taken(stamp, now + SETTLED_AFTER + Duration::from_secs(1));
        let racy = ReadStamp::taken(stamp, now);
        assert!(settled.settled);
        assert!(!racy.settled, "taken right after the write");

        use Reread::*;
        // Unchanged and settled: only a forced pass reads it.
        assert!(Changed.skips(Some(&stamp), Some(&settled)));
        assert!(Rescan.skips(Some(&stamp), Some(&settled)));
        assert!(!All.skips(Some(&stamp), Some(&settled)));
        // Unchanged but stamped within the timestamps' granularity: the rescan reads it.
        assert!(Changed.skips(Some(&stamp), Some(&racy)));
        assert!(!Rescan.skips(Some(&stamp), Some(&racy)));
        // Changed, gone, or never read: every pass reads it.
        for pass in [Changed, Rescan, All] {
            assert!(!pass.skips(Some(&other), Some(&settled)), "{pass:?}");
            assert!(!pass.skips(None, Some(&settled)), "{pass:?}");
            assert!(!pass.skips(Some(&stamp), None), "{pass:?}");
        }
    }

    #[test]
    fn the_backoff_doubles_up_to_its_maximum_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let waits: Vec<u128> = (0..4).map(|_| b.next().as_millis()).collect();
        assert_eq!(waits, [100, 200, 350, 350]);
        b.reset();
        assert_eq!(b.next(), Duration::from_millis(100));
    }
}
