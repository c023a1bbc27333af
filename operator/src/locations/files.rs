//! Local mode's location reports: the files `<location>.heartbeat.json` and
//! `<location>.verdicts.json` that `gtm-prober --config-dir` writes into one directory
//! (`<output>/locations` by default). The directory is read every
//! [`POLL`](crate::local::LOCATION_POLL); a file is read only when its size or modification
//! time changed, and a location whose files are all gone is forgotten.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use gtm_crds::location::Report;

use super::{LocationBook, take_heartbeat, take_verdicts};

/// The report directory and what was read of it.
#[derive(Debug)]
pub(crate) struct ReportDir {
    dir: PathBuf,
    /// Size and modification time of each file when last read.
    seen: HashMap<String, (u64, SystemTime)>,
}

impl ReportDir {
    /// The reports in `dir` (which need not exist yet).
    pub(crate) fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            seen: HashMap::new(),
        }
    }

    /// Reads what changed into `book` at `now`; returns whether the book changed. A report
    /// that cannot be used is logged once per change and left out.
    pub(crate) fn read(&mut self, book: &mut LocationBook, now: SystemTime) -> bool {
        let mut changed = false;
        let mut present = BTreeSet::new();
        let mut seen = HashMap::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries.filter_map(Result::ok).collect(),
            Err(_) => Vec::new(),
        };
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some((location, report)) = Report::of_file_name(&name) else {
                continue;
            };
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            let Ok(modified) = meta.modified() else {
                continue;
            };
            present.insert(location.to_string());
            let stamp = (meta.len(), modified);
            seen.insert(name.clone(), stamp);
            if self.seen.get(&name) == Some(&stamp) {
                continue;
            }
            let taken = std::fs::read(entry.path())
                .map_err(|e| e.to_string())
                .and_then(|bytes| {
                    match report {
                        Report::Heartbeat => take_heartbeat(book, location, &bytes, now),
                        Report::Verdicts => take_verdicts(book, location, &bytes),
                    }
                    .map_err(|e| e.to_string())
                });
            match taken {
                Ok(c) => changed |= c,
                Err(e) => {
                    tracing::warn!(file = %entry.path().display(), "location report not used: {e}");
                }
            }
        }
        self.seen = seen;
        changed | book.retain(|name| present.contains(name))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use gtm_crds::config::SCHEMA_VERSION;
    use gtm_crds::location::{Heartbeat, Verdicts};
    use gtm_crds::pool::HealthState;

    use super::*;

    #[test]
    fn reports_are_read_when_they_change_and_forgotten_when_gone() {
        let dir = tempfile::tempdir().unwrap();
        let mut reports = ReportDir::new(&dir.path().join("locations"));
        let mut book = LocationBook::new(Duration::from_secs(30));
        let now = SystemTime::now();
        assert!(!reports.read(&mut book, now), "no directory yet");

        let locations = dir.path().join("locations");
        std::fs::create_dir(&locations).unwrap();
        let heartbeat = Heartbeat {
            schema_version: SCHEMA_VERSION,
            location: "eu".into(),
            labels: Default::default(),
            observed_time: now.try_into().unwrap(),
            interval_seconds: 10,
        };
        std::fs::write(locations.join("eu.heartbeat.json"), heartbeat.to_json()).unwrap();
        let verdicts = Verdicts::new("eu", 1, [("ns/t@a#1", HealthState::Down)]);
        std::fs::write(locations.join("eu.verdicts.json"), verdicts.to_json()).unwrap();
        std::fs::write(locations.join("us.verdicts.json"), "{broken").unwrap();
        std::fs::write(locations.join("notes.txt"), "x").unwrap();
        assert!(reports.read(&mut book, now));
        assert!(book.is_fresh("eu", now));
        assert_eq!(book.verdict("eu", "ns/t@a#1"), Some(HealthState::Down));
        assert!(!reports.read(&mut book, now), "nothing changed");

        std::fs::remove_file(locations.join("eu.heartbeat.json")).unwrap();
        std::fs::remove_file(locations.join("eu.verdicts.json")).unwrap();
        assert!(reports.read(&mut book, now));
        assert_eq!(
            book.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            Vec::<&str>::new()
        );
    }
}
