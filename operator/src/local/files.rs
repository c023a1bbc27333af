//! The file side of local mode: manifests in, payload files out.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use gtm_crds::parts::Payload;

use crate::publish::Sink;

/// One manifest file as read: its name, and its bytes or why they could not be read.
pub(crate) type ReadFile = (String, io::Result<Vec<u8>>);

/// True for the file names local mode reads: `*.yaml` and `*.yml`, in any case (`A.YAML`).
pub(crate) fn is_manifest_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

/// Reads every manifest file directly in `dir` ([`is_manifest_name`]), sorted by name. Only
/// listing the directory can fail as a whole; a file that cannot be read is reported with its
/// error, so one bad file never hides the others.
pub(crate) fn read_manifests(dir: &Path) -> io::Result<Vec<ReadFile>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_manifest_name(p))
        .collect();
    paths.sort();
    Ok(paths
        .into_iter()
        .map(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, std::fs::read(&p))
        })
        .collect())
}

/// Writes a payload file atomically: a temporary file in the same directory, then a rename,
/// so that a reader never sees half a payload.
pub(crate) fn write_payload(dir: &Path, payload: Payload, bytes: &[u8]) -> io::Result<()> {
    let target = dir.join(payload.key());
    let tmp = dir.join(format!(".{}.tmp", payload.key()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, &target)
}

/// The payload texts a previous run left in `dir`, where readable, so that a restart neither
/// rewrites what is unchanged nor numbers backwards.
pub(crate) fn previous_payloads(dir: &Path) -> HashMap<Payload, String> {
    [Payload::Config, Payload::Health]
        .into_iter()
        .filter_map(|payload| {
            let text = std::fs::read_to_string(dir.join(payload.key())).ok()?;
            Some((payload, text))
        })
        .collect()
}

/// The payload directory as the [`Sink`] of the publish step.
pub(crate) struct FileSink<'a>(pub(crate) &'a Path);

impl Sink for FileSink<'_> {
    type Error = anyhow::Error;

    async fn write(
        &mut self,
        payload: Payload,
        text: &str,
        _generation: u64,
    ) -> anyhow::Result<()> {
        write_payload(self.0, payload, text.as_bytes())
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", payload.key()))
    }

    /// Files are written whole and only by this operator: what was written is there.
    fn intact(&mut self, _payload: Payload) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use gtm_crds::config::GtmConfig;

    use super::*;

    #[test]
    fn manifests_are_read_in_name_order_and_payloads_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.yaml"), "b").unwrap();
        std::fs::write(dir.path().join("a.yml"), "a").unwrap();
        std::fs::write(dir.path().join("C.YAML"), "c").unwrap();
        std::fs::write(dir.path().join("d.Yml"), "d").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let read: Vec<(String, Vec<u8>)> = read_manifests(dir.path())
            .unwrap()
            .into_iter()
            .map(|(n, b)| (n, b.unwrap()))
            .collect();
        assert_eq!(
            read,
            vec![
                ("C.YAML".into(), b"c".to_vec()),
                ("a.yml".into(), b"a".to_vec()),
                ("b.yaml".into(), b"b".to_vec()),
                ("d.Yml".into(), b"d".to_vec()),
            ]
        );

        let mut config = GtmConfig::empty(vec!["gtm.example.com".into()]);
        config.generation = 9;
        write_payload(dir.path(), Payload::Config, &config.to_json()).unwrap();
        let previous = previous_payloads(dir.path());
        assert_eq!(
            previous.keys().collect::<Vec<_>>(),
            [&Payload::Config],
            "no health payload yet"
        );
        assert_eq!(
            GtmConfig::from_json(previous[&Payload::Config].as_bytes())
                .unwrap()
                .generation,
            9
        );
        assert!(!dir.path().join(".config.json.tmp").exists());
    }
}
