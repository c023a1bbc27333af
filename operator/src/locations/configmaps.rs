//! Cluster mode's location reports: the ConfigMaps `gtm-prober` writes in the operator's
//! namespace ([`gtm_crds::location`]), as the operator's watch sees them. A report is parsed
//! only when its objects' resource versions changed (verdicts of 100 000 tasks are megabytes),
//! verdict parts are reassembled (a set mid-update keeps the verdicts the book has), and a
//! location whose ConfigMaps are all gone is forgotten.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

use gtm_crds::location::{Report, report_of, verdicts_part_of};
use gtm_crds::parts::{AssemblyError, Part, assemble};
use k8s_openapi::api::core::v1::ConfigMap;

use super::{LocationBook, take_heartbeat, take_verdicts};

/// The (name, resourceVersion) of a report's objects, to tell whether it changed.
type Versions = Vec<(String, String)>;

/// What was read of the report ConfigMaps.
#[derive(Debug, Default)]
pub(crate) struct ReportConfigMaps {
    seen: HashMap<(String, Report), Versions>,
}

/// One location's report ConfigMaps.
#[derive(Default)]
struct LocationObjects<'a> {
    heartbeat: Vec<&'a ConfigMap>,
    verdicts: Vec<&'a ConfigMap>,
}

impl ReportConfigMaps {
    /// Reads what changed in `configmaps` into `book` at `now`; returns whether the book
    /// changed. A report that cannot be used is logged once per change and left out.
    pub(crate) fn read(
        &mut self,
        configmaps: &[Arc<ConfigMap>],
        book: &mut LocationBook,
        now: SystemTime,
    ) -> bool {
        let mut by_location: BTreeMap<&str, LocationObjects<'_>> = BTreeMap::new();
        for cm in configmaps {
            let Some((location, report)) = report_of(cm) else {
                continue;
            };
            let objects = by_location.entry(location).or_default();
            match report {
                Report::Heartbeat => objects.heartbeat.push(cm),
                Report::Verdicts => objects.verdicts.push(cm),
            }
        }
        let mut changed = false;
        let mut seen = HashMap::new();
        for (location, objects) in &by_location {
            for (report, cms) in [
                (Report::Heartbeat, &objects.heartbeat),
                (Report::Verdicts, &objects.verdicts),
            ] {
                if cms.is_empty() {
                    continue;
                }
                let key = (location.to_string(), report);
                let versions = versions(cms);
                if self.seen.get(&key) != Some(&versions) {
                    changed |= take(book, location, report, cms, now);
                }
                seen.insert(key, versions);
            }
        }
        self.seen = seen;
        changed | book.retain(|name| by_location.contains_key(name))
    }
}

fn versions(cms: &[&ConfigMap]) -> Versions {
    let mut v: Versions = cms
        .iter()
        .map(|cm| {
            (
                cm.metadata.name.clone().unwrap_or_default(),
                cm.metadata.resource_version.clone().unwrap_or_default(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Takes one report of `location` from its ConfigMaps; returns whether the book changed.
fn take(
    book: &mut LocationBook,
    location: &str,
    report: Report,
    cms: &[&ConfigMap],
    now: SystemTime,
) -> bool {
    let text = match report {
        Report::Heartbeat => cms
            .iter()
            .find_map(|cm| cm.data.as_ref()?.get(report.key()).cloned())
            .ok_or_else(|| format!("no {} key", report.key())),
        Report::Verdicts => cms
            .iter()
            .map(|cm| verdicts_part_of(cm).ok_or("a part lacks its annotations or data"))
            .collect::<Result<Vec<Part>, _>>()
            .map_err(str::to_string)
            .and_then(|parts| match assemble(&parts) {
                Ok(text) => Ok(text),
                // Parts of two publications: the next event completes the set.
                Err(e @ (AssemblyError::Mixed | AssemblyError::Incomplete { .. })) => {
                    tracing::debug!(location, "verdict parts not whole yet: {e}");
                    Err(String::new())
                }
                Err(e) => Err(e.to_string()),
            }),
    };
    let taken = text.and_then(|text| {
        match report {
            Report::Heartbeat => take_heartbeat(book, location, text.as_bytes(), now),
            Report::Verdicts => take_verdicts(book, location, text.as_bytes()),
        }
        .map_err(|e| e.to_string())
    });
    match taken {
        Ok(changed) => changed,
        Err(e) => {
            if !e.is_empty() {
                tracing::warn!(location, %report, "location report not used: {e}");
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use gtm_crds::config::SCHEMA_VERSION;
    use gtm_crds::location::{
        Heartbeat, Verdicts, heartbeat_configmap_name, report_labels, verdicts_configmap_name,
    };
    use gtm_crds::parts::{part_configmap, split};
    use gtm_crds::pool::HealthState;

    use super::*;

    fn verdict_parts(verdicts: &Verdicts, version: &str) -> Vec<Arc<ConfigMap>> {
        split(&verdicts.to_json(), 50)
            .iter()
            .map(|p| {
                let name = verdicts_configmap_name("kube-gtm", &verdicts.location, p.index);
                let labels = report_labels("kube-gtm", &verdicts.location, Report::Verdicts);
                let mut cm = part_configmap(&name, "gtm", labels, Report::Verdicts.key(), p);
                cm.metadata.resource_version = Some(version.into());
                Arc::new(cm)
            })
            .collect()
    }

    fn heartbeat(location: &str, now: SystemTime, version: &str) -> Arc<ConfigMap> {
        let h = Heartbeat {
            schema_version: SCHEMA_VERSION,
            location: location.into(),
            labels: Default::default(),
            observed_time: now.try_into().unwrap(),
            interval_seconds: 10,
        };
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(heartbeat_configmap_name("kube-gtm", location));
        cm.metadata.labels = Some(report_labels("kube-gtm", location, Report::Heartbeat));
        cm.metadata.resource_version = Some(version.into());
        cm.data = Some([(Report::Heartbeat.key().to_string(), h.to_json())].into());
        Arc::new(cm)
    }

    #[test]
    fn parts_are_reassembled_and_read_only_when_their_versions_change() {
        let now = SystemTime::now();
        let mut reports = ReportConfigMaps::default();
        let mut book = LocationBook::new(Duration::from_secs(30));
        let verdicts = Verdicts::new(
            "eu",
            1,
            [
                ("ns/t@192.0.2.1#80", HealthState::Down),
                ("ns/t@192.0.2.2#80", HealthState::Up),
            ],
        );
        let mut cms = verdict_parts(&verdicts, "1");
        assert!(cms.len() > 1, "several parts");
        cms.push(heartbeat("eu", now, "1"));
        assert!(reports.read(&cms, &mut book, now));
        assert!(book.is_fresh("eu", now));
        assert_eq!(
            book.verdict("eu", "ns/t@192.0.2.1#80"),
            Some(HealthState::Down)
        );
        assert!(!reports.read(&cms, &mut book, now));

        // Mid-update: one part of new verdicts among the old ones; the old verdicts stay.
        let newer = Verdicts::new("eu", 2, [("ns/t@192.0.2.1#80", HealthState::Up)]);
        let mut mixed = cms.clone();
        mixed[0] = verdict_parts(&newer, "2")[0].clone();
        assert!(!reports.read(&mixed, &mut book, now));
        assert_eq!(
            book.verdict("eu", "ns/t@192.0.2.1#80"),
            Some(HealthState::Down)
        );

        assert!(reports.read(&[], &mut book, now), "every report gone");
        assert_eq!(book.iter().count(), 0);
    }
}
