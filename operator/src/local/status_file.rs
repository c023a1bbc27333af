//! `status.json` in the output directory: the statuses local mode computed last, written on
//! every change and read back at start, so that transition times and the histories survive a
//! restart, as the API server keeps them in a cluster. For people and tools; the DNS pod does
//! not read it.

use std::collections::BTreeMap;
use std::path::Path;

use gtm_crds::manifest::Kind;
use serde::{Deserialize, Serialize};

use crate::inventory::ObjectKey;
use crate::status::ObjectStatus;

/// The file's name in the output directory.
pub(crate) const STATUS_FILE: &str = "status.json";

/// The file: every object's status.
#[derive(Serialize, Deserialize)]
struct StatusFile {
    objects: Vec<Entry>,
}

/// One object's status.
#[derive(Serialize, Deserialize)]
struct Entry {
    kind: String,
    namespace: String,
    name: String,
    status: serde_json::Value,
}

/// Writes the statuses atomically (a temporary file, then a rename).
pub(crate) fn write(
    dir: &Path,
    statuses: &BTreeMap<ObjectKey, ObjectStatus>,
) -> anyhow::Result<()> {
    let file = StatusFile {
        objects: statuses
            .iter()
            .map(|(key, status)| Entry {
                kind: key.kind.as_str().to_string(),
                namespace: key.namespace.clone(),
                name: key.name.clone(),
                status: status.to_json(),
            })
            .collect(),
    };
    let mut text = serde_json::to_vec_pretty(&file)?;
    text.push(b'\n');
    let tmp = dir.join(format!(".{STATUS_FILE}.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, dir.join(STATUS_FILE))?;
    Ok(())
}

/// The statuses a previous run wrote; none when there is no file. A file that cannot be read,
/// and an entry that does not parse, are logged and skipped: the objects start afresh, as new
/// objects do.
pub(crate) fn read(dir: &Path) -> BTreeMap<ObjectKey, ObjectStatus> {
    let path = dir.join(STATUS_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return BTreeMap::new(),
        Err(e) => {
            tracing::warn!(path = %path.display(), "cannot read the last statuses, starting afresh: {e}");
            return BTreeMap::new();
        }
    };
    let file: StatusFile = match serde_json::from_slice(&bytes) {
        Ok(file) => file,
        Err(e) => {
            tracing::warn!(path = %path.display(), "the last statuses do not parse, starting afresh: {e}");
            return BTreeMap::new();
        }
    };
    file.objects
        .into_iter()
        .filter_map(|e| {
            let parsed = parse(&e);
            if parsed.is_none() {
                tracing::warn!(path = %path.display(), kind = e.kind, namespace = e.namespace, name = e.name, "skipping a status that does not parse");
            }
            parsed
        })
        .collect()
}

fn parse(entry: &Entry) -> Option<(ObjectKey, ObjectStatus)> {
    let kind = Kind::ALL.into_iter().find(|k| k.as_str() == entry.kind)?;
    let value = entry.status.clone();
    let status = match kind {
        Kind::GtmAccessDomain => ObjectStatus::Domain(serde_json::from_value(value).ok()?),
        Kind::AddressPool => ObjectStatus::Pool(serde_json::from_value(value).ok()?),
        Kind::HealthCheckTemplate => ObjectStatus::Template(serde_json::from_value(value).ok()?),
        Kind::GtmZone => ObjectStatus::Zone(serde_json::from_value(value).ok()?),
    };
    Some((
        ObjectKey::new(kind, entry.namespace.clone(), entry.name.clone()),
        status,
    ))
}

#[cfg(test)]
mod tests {
    use gtm_crds::domain::GtmAccessDomainStatus;
    use gtm_crds::history::HistoryEntry;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    #[test]
    fn statuses_are_read_back_as_written_and_a_bad_file_starts_afresh() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).is_empty(), "no file yet");
        let status = ObjectStatus::Domain(GtmAccessDomainStatus {
            active_pools: vec!["standby".into()],
            history: vec![HistoryEntry {
                time: Time(k8s_openapi::jiff::Timestamp::from_second(100).unwrap()),
                reason: "Failover".into(),
                from: "primary".into(),
                to: "standby".into(),
                message: "answering from standby".into(),
            }],
            ..Default::default()
        });
        let key = ObjectKey::new(Kind::GtmAccessDomain, "default", "web");
        let statuses = BTreeMap::from([(key, status)]);
        write(dir.path(), &statuses).unwrap();
        assert_eq!(read(dir.path()), statuses);
        assert!(!dir.path().join(".status.json.tmp").exists());

        // An entry of another kind's shape is skipped, the others are kept.
        let mut file: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join(STATUS_FILE)).unwrap()).unwrap();
        let mut broken = file["objects"][0].clone();
        broken["name"] = "broken".into();
        broken["status"]["activePools"] = "not a list".into();
        file["objects"].as_array_mut().unwrap().push(broken);
        std::fs::write(dir.path().join(STATUS_FILE), file.to_string()).unwrap();
        assert_eq!(read(dir.path()), statuses);

        std::fs::write(dir.path().join(STATUS_FILE), "{not json").unwrap();
        assert!(read(dir.path()).is_empty());
    }
}
