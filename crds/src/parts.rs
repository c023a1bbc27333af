//! How a payload travels in ConfigMaps: split into parts that each fit one ConfigMap (the API
//! server caps an object at 1 MiB), and reassembled by the reader, which refuses a mix of parts
//! from different payloads.
//!
//! Every part is a ConfigMap named [`configmap_name`]`(instance, payload, index)` in the
//! operator's namespace, with
//!
//! - labels [`PAYLOAD_LABEL`] = [`Payload::label_value`] and [`INSTANCE_LABEL`] = the instance
//!   (the DNS pods select on both);
//! - annotation [`PART_ANNOTATION`] = `"index/count"` and [`DIGEST_ANNOTATION`] = the SHA-256 of
//!   the whole payload, hex;
//! - the part's text under the data key [`Payload::key`].
//!
//! The writer applies every part of a new payload, then deletes parts beyond the new count. A
//! reader that sees parts of two payloads (mid-update) finds that their digests differ and keeps
//! what it had until the set is whole again.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sha2::{Digest, Sha256};

pub use crate::config::{CONFIG_KEY, HEALTH_KEY, PAYLOAD_LABEL};

/// Label naming the kube-gtm installation a ConfigMap belongs to (several may share a
/// namespace).
pub const INSTANCE_LABEL: &str = "gtm.kubegtm.io/instance";
/// Annotation `"index/count"` of a part.
pub const PART_ANNOTATION: &str = "gtm.kubegtm.io/part";
/// Annotation holding the SHA-256 (hex) of the whole payload a part belongs to.
pub const DIGEST_ANNOTATION: &str = "gtm.kubegtm.io/digest";
/// Most payload bytes in one part: 1 MiB minus room for metadata.
pub const MAX_PART_BYTES: usize = 900 * 1024;

/// The two payloads of the config contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Payload {
    /// The compiled [`crate::config::GtmConfig`].
    Config,
    /// The [`crate::config::HealthSnapshot`].
    Health,
}

impl Payload {
    /// Both payloads.
    pub const ALL: [Payload; 2] = [Payload::Config, Payload::Health];

    /// Data key of the part text (also the file name in local mode).
    pub fn key(self) -> &'static str {
        match self {
            Self::Config => CONFIG_KEY,
            Self::Health => HEALTH_KEY,
        }
    }

    /// Value of [`PAYLOAD_LABEL`].
    pub fn label_value(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Health => "health",
        }
    }

    /// The payload a [`PAYLOAD_LABEL`] value names.
    pub fn from_label_value(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.label_value() == value)
    }
}

/// Name of the ConfigMap holding part `index` of a payload, e.g. `kube-gtm-config-0`.
pub fn configmap_name(instance: &str, payload: Payload, index: usize) -> String {
    format!("{instance}-{}-{index}", payload.label_value())
}

/// The label selector of an instance's payload ConfigMaps: [`INSTANCE_LABEL`] = `instance`
/// and [`PAYLOAD_LABEL`] present.
pub fn selector(instance: &str) -> String {
    format!("{INSTANCE_LABEL}={instance},{PAYLOAD_LABEL}")
}

/// The payload a ConfigMap's [`PAYLOAD_LABEL`] names, if any.
pub fn payload_of(cm: &ConfigMap) -> Option<Payload> {
    Payload::from_label_value(cm.metadata.labels.as_ref()?.get(PAYLOAD_LABEL)?)
}

/// The payload part a ConfigMap holds: its payload label, part and digest annotations and
/// the part's text under the payload's data key. `None` when any of them is missing or
/// malformed.
pub fn part_of(cm: &ConfigMap) -> Option<(Payload, Part)> {
    let payload = payload_of(cm)?;
    Some((payload, part_in(cm, payload.key())?))
}

/// The part a ConfigMap holds under the data `key`, by its part and digest annotations (any
/// payload split with [`split`], such as a location's verdicts). `None` when an annotation or
/// the key is missing or malformed.
pub fn part_in(cm: &ConfigMap, key: &str) -> Option<Part> {
    let annotations = cm.metadata.annotations.as_ref()?;
    let (index, count) = parse_part_annotation(annotations.get(PART_ANNOTATION)?)?;
    Some(Part {
        index,
        count,
        digest: annotations.get(DIGEST_ANNOTATION)?.clone(),
        data: cm.data.as_ref()?.get(key)?.clone(),
    })
}

/// The body of a server-side apply of one part: a ConfigMap `name` in `namespace` with
/// `labels`, the part and digest annotations, and the part's text under `key`.
pub fn part_configmap(
    name: &str,
    namespace: &str,
    labels: BTreeMap<String, String>,
    key: &str,
    part: &Part,
) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([
                (PART_ANNOTATION.to_string(), part.annotation()),
                (DIGEST_ANNOTATION.to_string(), part.digest.clone()),
            ])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(key.to_string(), part.data.clone())])),
        ..ConfigMap::default()
    }
}

/// One part of a payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// Position, from 0.
    pub index: usize,
    /// How many parts the payload has.
    pub count: usize,
    /// SHA-256 (hex) of the whole payload.
    pub digest: String,
    /// This part's text.
    pub data: String,
}

impl Part {
    /// The [`PART_ANNOTATION`] value.
    pub fn annotation(&self) -> String {
        format!("{}/{}", self.index, self.count)
    }
}

/// Parses a [`PART_ANNOTATION`] value `"index/count"`.
pub fn parse_part_annotation(value: &str) -> Option<(usize, usize)> {
    let (i, n) = value.split_once('/')?;
    let (i, n) = (i.parse().ok()?, n.parse().ok()?);
    (i < n).then_some((i, n))
}

/// SHA-256 of a payload, lower-case hex.
pub fn digest(payload: &str) -> String {
    Sha256::digest(payload.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Splits a payload into parts of at most `max_bytes` bytes each (at character boundaries).
/// An empty payload is one empty part.
pub fn split(payload: &str, max_bytes: usize) -> Vec<Part> {
    assert!(max_bytes >= 4, "a part must hold any one character");
    let mut chunks = Vec::new();
    let mut rest = payload;
    loop {
        if rest.len() <= max_bytes {
            chunks.push(rest);
            break;
        }
        let mut cut = max_bytes;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (head, tail) = rest.split_at(cut);
        chunks.push(head);
        rest = tail;
    }
    let digest = digest(payload);
    let count = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(index, data)| Part {
            index,
            count,
            digest: digest.clone(),
            data: data.to_owned(),
        })
        .collect()
}

/// Why a set of parts does not form a payload (yet).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AssemblyError {
    /// No part at all.
    #[error("no parts")]
    Empty,
    /// Parts disagree on the count or the digest: an update is in flight.
    #[error("parts of different payloads (an update is in flight)")]
    Mixed,
    /// Some parts are missing.
    #[error("{have} of {need} parts present")]
    Incomplete {
        /// Distinct parts present.
        have: usize,
        /// Parts the payload has.
        need: usize,
    },
    /// The parts are complete but their text does not hash to the digest.
    #[error("payload does not match its digest")]
    DigestMismatch,
}

/// Reassembles a payload from its parts, in any order; duplicates of one index must agree.
pub fn assemble<'a>(parts: impl IntoIterator<Item = &'a Part>) -> Result<String, AssemblyError> {
    let mut parts: Vec<&Part> = parts.into_iter().collect();
    let first = *parts.first().ok_or(AssemblyError::Empty)?;
    if parts
        .iter()
        .any(|p| p.count != first.count || p.digest != first.digest)
    {
        return Err(AssemblyError::Mixed);
    }
    parts.sort_by_key(|p| p.index);
    parts.dedup_by(|a, b| a.index == b.index && a.data == b.data);
    let indices_ok = parts.iter().enumerate().all(|(i, p)| p.index == i);
    if parts.len() != first.count || !indices_ok {
        return Err(if indices_ok || parts.len() < first.count {
            AssemblyError::Incomplete {
                have: parts.len(),
                need: first.count,
            }
        } else {
            AssemblyError::Mixed
        });
    }
    let payload: String = parts.iter().map(|p| p.data.as_str()).collect();
    if digest(&payload) != first.digest {
        return Err(AssemblyError::DigestMismatch);
    }
    Ok(payload)
}

impl fmt::Display for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label_value())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn small_payload_is_one_part() {
        let parts = split("{\"a\":1}", MAX_PART_BYTES);
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].annotation(), "0/1");
        assert_eq!(assemble(&parts).unwrap(), "{\"a\":1}");
    }

    #[test]
    fn split_respects_size_and_char_boundaries_and_round_trips() {
        let payload = "aé€😀".repeat(1000);
        for max in [4, 5, 7, 100, 4096] {
            let parts = split(&payload, max);
            assert!(
                parts
                    .iter()
                    .all(|p| p.data.len() <= max && !p.data.is_empty())
            );
            assert!(parts.iter().all(|p| p.count == parts.len()));
            let mut shuffled = parts.clone();
            shuffled.reverse();
            assert_eq!(assemble(&shuffled).unwrap(), payload, "max {max}");
        }
    }

    #[test]
    fn missing_mixed_and_corrupt_parts_are_refused() {
        let a = split(&"x".repeat(100), 30);
        let b = split(&"y".repeat(100), 30);
        assert_eq!(
            assemble(&a[..3]),
            Err(AssemblyError::Incomplete { have: 3, need: 4 })
        );
        let mixed = [a[0].clone(), a[1].clone(), b[2].clone(), a[3].clone()];
        assert_eq!(assemble(&mixed), Err(AssemblyError::Mixed));
        let mut corrupt = a.clone();
        corrupt[1].data = "z".repeat(30);
        assert_eq!(assemble(&corrupt), Err(AssemblyError::DigestMismatch));
        let mut dup = a.clone();
        dup[3] = a[0].clone();
        assert!(assemble(&dup).is_err());
        assert_eq!(assemble(&[]), Err(AssemblyError::Empty));
    }

    #[test]
    fn names_and_annotations() {
        assert_eq!(
            configmap_name("kube-gtm", Payload::Health, 2),
            "kube-gtm-health-2"
        );
        assert_eq!(parse_part_annotation("2/3"), Some((2, 3)));
        assert_eq!(parse_part_annotation("3/3"), None);
        assert_eq!(parse_part_annotation("x/3"), None);
        assert_eq!(Payload::from_label_value("config"), Some(Payload::Config));
        assert_eq!(Payload::from_label_value("other"), None);
        assert_eq!(
            selector("kube-gtm"),
            "gtm.kubegtm.io/instance=kube-gtm,gtm.kubegtm.io/payload"
        );
    }

    /// A part as the writer labels and annotates it.
    fn payload_part(payload: Payload, part: &Part) -> ConfigMap {
        let labels = BTreeMap::from([
            (INSTANCE_LABEL.to_string(), "kube-gtm".to_string()),
            (PAYLOAD_LABEL.to_string(), payload.label_value().to_string()),
        ]);
        let name = configmap_name("kube-gtm", payload, part.index);
        part_configmap(&name, "gtm", labels, payload.key(), part)
    }

    #[test]
    fn a_configmap_part_round_trips() {
        let parts = split(&"x".repeat(100), 30);
        let cm = payload_part(Payload::Health, &parts[2]);
        assert_eq!(cm.metadata.name.as_deref(), Some("kube-gtm-health-2"));
        assert_eq!(payload_of(&cm), Some(Payload::Health));
        assert_eq!(part_of(&cm), Some((Payload::Health, parts[2].clone())));
    }

    #[test]
    fn a_configmap_missing_any_piece_is_no_part() {
        let part = &split("{}", MAX_PART_BYTES)[0];
        let whole = payload_part(Payload::Config, part);
        let edited = |edit: &dyn Fn(&mut ConfigMap)| {
            let mut cm = whole.clone();
            edit(&mut cm);
            cm
        };
        let set = |map: &mut Option<BTreeMap<String, String>>, key: &str, value: &str| {
            map.get_or_insert_default().insert(key.into(), value.into());
        };
        let unlabelled = edited(&|cm| cm.metadata.labels = None);
        let unknown_payload = edited(&|cm| set(&mut cm.metadata.labels, PAYLOAD_LABEL, "other"));
        let bad_index = edited(&|cm| set(&mut cm.metadata.annotations, PART_ANNOTATION, "1/1"));
        let no_digest = edited(&|cm| {
            cm.metadata.annotations = None;
            set(&mut cm.metadata.annotations, PART_ANNOTATION, "0/1");
        });
        let wrong_key = edited(&|cm| {
            cm.data = None;
            set(&mut cm.data, HEALTH_KEY, "{}");
        });
        for cm in [unlabelled, unknown_payload] {
            assert_eq!(payload_of(&cm), None);
            assert_eq!(part_of(&cm), None);
        }
        for cm in [bad_index, no_digest, wrong_key] {
            assert_eq!(payload_of(&cm), Some(Payload::Config));
            assert_eq!(part_of(&cm), None);
        }
    }
}
