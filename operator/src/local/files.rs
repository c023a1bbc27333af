//! The file side of local mode: manifests in, payload files out.

use std::io;
use std::path::{Path, PathBuf};

use gtm_crds::config::{GtmConfig, HealthSnapshot};
use gtm_crds::parts::Payload;

/// Reads every `*.yaml` / `*.yml` file directly in `dir`, sorted by name, as (file name, text).
pub fn read_manifests(dir: &Path) -> io::Result<Vec<(String, String)>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
        })
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p)?;
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok((name, text))
        })
        .collect()
}

/// Writes a payload file atomically: a temporary file in the same directory, then a rename,
/// so that a reader never sees half a payload.
pub fn write_payload(dir: &Path, payload: Payload, bytes: &[u8]) -> io::Result<()> {
    let target = dir.join(payload.key());
    let tmp = dir.join(format!(".{}.tmp", payload.key()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, &target)
}

/// The payloads a previous run left in `dir`, where readable, so that a restart neither
/// rewrites what is unchanged nor numbers backwards.
pub fn previous_payloads(dir: &Path) -> (Option<GtmConfig>, Option<HealthSnapshot>) {
    let read = |payload: Payload| std::fs::read(dir.join(payload.key())).ok();
    let config = read(Payload::Config).and_then(|b| GtmConfig::from_json(&b).ok());
    let health = read(Payload::Health).and_then(|b| HealthSnapshot::from_json(&b).ok());
    (config, health)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_are_read_in_name_order_and_payloads_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.yaml"), "b").unwrap();
        std::fs::write(dir.path().join("a.yml"), "a").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let read = read_manifests(dir.path()).unwrap();
        assert_eq!(
            read,
            vec![("a.yml".into(), "a".into()), ("b.yaml".into(), "b".into())]
        );

        let mut config = GtmConfig::empty(vec!["gtm.example.com".into()]);
        config.generation = 9;
        write_payload(dir.path(), Payload::Config, &config.to_json()).unwrap();
        let (c, h) = previous_payloads(dir.path());
        assert_eq!((c.map(|c| c.generation), h), (Some(9), None));
        assert!(!dir.path().join(".config.json.tmp").exists());
    }
}
