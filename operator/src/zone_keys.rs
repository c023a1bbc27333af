//! The signed zones' keys as the operator reads them, to show each zone's DS record in
//! `GtmZone.status.dnssec` and say in its `DnssecKeyReady` condition what keeps the DNS pods
//! from signing it. The operator reads the same keys the DNS pods read: in local mode their key
//! directory (`<output>/dnssec`, or `--dnssec-keys`), in a cluster the Secret the chart mounts
//! into them (`--dnssec-keys-secret`). Only the DS, the DNSKEY and the key tag leave this
//! module: the private key is dropped once parsed and never reaches a status, log or event.

use std::collections::BTreeMap;
use std::path::Path;

use gtm_crds::config::ZoneConfig;
use gtm_crds::dnssec::{KeyError, ZoneSigningKey, key_file_name};
use gtm_crds::zone::{DnssecAlgorithm, DnssecStatus};

/// Reasons of the `DnssecKeyReady` condition.
pub(crate) mod reason {
    /// The key was read and is of the zone's algorithm.
    pub(crate) const KEY_LOADED: &str = "KeyLoaded";
    /// No key file, no Secret, or no item for the zone in it.
    pub(crate) const KEY_NOT_FOUND: &str = "KeyNotFound";
    /// The key could not be read or is no usable key.
    pub(crate) const KEY_UNREADABLE: &str = "KeyUnreadable";
    /// The key is of the other algorithm than the zone's `dnssec.algorithm`.
    pub(crate) const ALGORITHM_MISMATCH: &str = "AlgorithmMismatch";
    /// The operator was not told where the keys are (cluster mode without
    /// `--dnssec-keys-secret`).
    pub(crate) const KEY_SOURCE_NOT_SET: &str = "KeySourceNotSet";
}

/// What the operator knows of a signed zone's key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum KeyState {
    /// The key is usable: what the parent zone needs.
    Ready(DnssecStatus),
    /// It is not, with the condition's reason and a message saying what to do.
    Problem {
        /// A [`reason`].
        reason: &'static str,
        /// What is wrong and what to do.
        message: String,
    },
}

impl KeyState {
    /// Whether the DNS pods would refuse a config signing the zone with this key: a missing
    /// or unusable key. Not known when the operator was not told where the keys are.
    pub(crate) fn refused_by_dns_pods(&self) -> bool {
        matches!(self, Self::Problem { reason, .. } if *reason != reason::KEY_SOURCE_NOT_SET)
    }
}

/// The key states of the signed zones, by zone (canonical).
pub(crate) type KeyStates = BTreeMap<String, KeyState>;

/// What a key source holds for one zone.
pub(crate) enum Lookup {
    /// The key's PEM text, and where it was read (for messages).
    Found {
        /// Where, e.g. `key file /out/dnssec/gtm.example.com.key`.
        from: String,
        /// The PEM text.
        pem: Vec<u8>,
    },
    /// Nothing there: what is missing.
    Missing(String),
    /// The source could not be read: why.
    Unreadable(String),
}

/// The signed zones of a config: zone (canonical) and algorithm.
pub(crate) fn signed_zones(zones: &[ZoneConfig]) -> Vec<(&str, DnssecAlgorithm)> {
    zones
        .iter()
        .filter_map(|z| Some((z.name.as_str(), z.dnssec.as_ref()?.algorithm)))
        .collect()
}

/// The key state of every zone in `signed`, each looked up by its item name (`<zone>.key`).
pub(crate) fn key_states(
    signed: &[(&str, DnssecAlgorithm)],
    mut lookup: impl FnMut(&str) -> Lookup,
) -> KeyStates {
    signed
        .iter()
        .map(|&(zone, algorithm)| {
            let state = state(zone, algorithm, lookup(&key_file_name(zone)));
            (zone.to_owned(), state)
        })
        .collect()
}

/// The state of every zone in `signed` when the operator has no key source.
pub(crate) fn unset_states(signed: &[(&str, DnssecAlgorithm)]) -> KeyStates {
    signed
        .iter()
        .map(|&(zone, _)| {
            let state = KeyState::Problem {
                reason: reason::KEY_SOURCE_NOT_SET,
                message: "the operator was not told where the zone keys are (--dnssec-keys-secret, set by the chart with dns.dnssec.keysSecret), so it cannot show the DS record; the DNS pods sign with the keys they are given".into(),
            };
            (zone.to_owned(), state)
        })
        .collect()
}

/// The key states of the signed zones read from `dir` (`<zone>.key` files).
pub(crate) fn read_dir(dir: &Path, signed: &[(&str, DnssecAlgorithm)]) -> KeyStates {
    key_states(signed, |item| {
        let path = dir.join(item);
        let from = format!("key file {}", path.display());
        match std::fs::read(&path) {
            Ok(pem) => Lookup::Found { from, pem },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Lookup::Missing(format!("no {from}"))
            }
            // An I/O error names the failure, never the content.
            Err(e) => Lookup::Unreadable(format!("reading {from}: {e}")),
        }
    })
}

/// The `openssl` command that makes a key of `algorithm`.
fn genpkey(zone: &str, algorithm: DnssecAlgorithm) -> String {
    let args = match algorithm {
        DnssecAlgorithm::ECDSAP256SHA256 => "-algorithm EC -pkeyopt ec_paramgen_curve:P-256",
        DnssecAlgorithm::ED25519 => "-algorithm ed25519",
    };
    format!("openssl genpkey {args} -out {}", key_file_name(zone))
}

/// What the DNS pods do meanwhile, said after every problem.
const MEANWHILE: &str = "until then the DNS pods refuse every config that signs this zone and keep serving the last good one";

/// The state of `zone`'s key from what its source holds.
fn state(zone: &str, algorithm: DnssecAlgorithm, lookup: Lookup) -> KeyState {
    let problem = |reason, message| KeyState::Problem { reason, message };
    match lookup {
        Lookup::Found { from, pem } => match ZoneSigningKey::for_zone(zone, &pem, algorithm) {
            Ok(key) => KeyState::Ready(key.status()),
            Err(e @ KeyError::WrongAlgorithm { .. }) => problem(
                reason::ALGORITHM_MISMATCH,
                format!("{from}: {e}; {MEANWHILE}"),
            ),
            Err(e) => problem(reason::KEY_UNREADABLE, format!("{from}: {e}; {MEANWHILE}")),
        },
        Lookup::Missing(what) => problem(
            reason::KEY_NOT_FOUND,
            format!(
                "{what}: make the zone's key (`{}`) and put it there (README, DNSSEC); {MEANWHILE}",
                genpkey(zone, algorithm)
            ),
        ),
        Lookup::Unreadable(why) => problem(reason::KEY_UNREADABLE, format!("{why}; {MEANWHILE}")),
    }
}

/// Logs each zone's DS when it is first known or changes, and each key problem when it
/// appears or changes (local mode prints no events; in a cluster the events go with the
/// condition).
#[derive(Debug, Default)]
pub(crate) struct KeyLog(KeyStates);

impl KeyLog {
    /// Logs what changed since the last call.
    pub(crate) fn log_changes(&mut self, states: &KeyStates) {
        for (zone, state) in states {
            if self.0.get(zone) == Some(state) {
                continue;
            }
            match state {
                KeyState::Ready(s) => tracing::info!(
                    zone,
                    key_tag = s.key_tag,
                    ds = s.ds,
                    "DNSSEC: the zone's parent zone needs this DS record"
                ),
                KeyState::Problem { reason, message } => {
                    tracing::warn!(zone, reason, "DNSSEC key not ready: {message}")
                }
            }
        }
        self.0.clone_from(states);
    }
}

#[cfg(test)]
pub(crate) mod tests;
