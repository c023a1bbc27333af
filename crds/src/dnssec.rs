//! A signed zone's key as both binaries read it (feature `dnssec`): the PKCS#8 PEM file
//! `<zone>.key` ([`key_file_name`]), the DNSKEY record the DNS pods publish and sign with
//! ([`ZoneSigningKey`]), and the DS record its parent zone needs ([`ZoneSigningKey::status`],
//! what the operator shows in `GtmZone.status.dnssec`).
//!
//! The key is a combined signing key (CSK: DNSKEY flags 257, zone key and secure entry point)
//! of algorithm 13 (ECDSA P-256 SHA-256) or 15 (Ed25519); the DS digest is SHA-256 (digest
//! type 2, the one RFC 8624 requires). Nothing about the private key leaves this module but
//! the signing key itself: errors name what is wrong, never the file's content.

use std::fmt;

use hickory_proto::dnssec::crypto::{Ed25519SigningKey, signing_key_from_der};
use hickory_proto::dnssec::rdata::DNSKEY;
use hickory_proto::dnssec::{Algorithm, DigestType, SigningKey};
use hickory_proto::rr::Name;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

use crate::zone::{DnssecAlgorithm, DnssecStatus};

/// DNSKEY flags of a combined signing key: zone key and secure entry point.
pub const CSK_FLAGS: u16 = 257;
/// TTL of the DNSKEY record (and of its signature).
pub const DNSKEY_TTL: u32 = 3600;
/// The DS digest type: SHA-256.
pub const DS_DIGEST_TYPE: u8 = 2;

/// The name of a zone's key file (or Secret item): `<zone>.key`, the zone in canonical form
/// (lower case, no trailing dot).
pub fn key_file_name(zone: &str) -> String {
    format!("{zone}.key")
}

fn hickory_algorithm(algorithm: DnssecAlgorithm) -> Algorithm {
    match algorithm {
        DnssecAlgorithm::ECDSAP256SHA256 => Algorithm::ECDSAP256SHA256,
        DnssecAlgorithm::ED25519 => Algorithm::ED25519,
    }
}

/// The other algorithm (a key that is not of one may be of the other).
fn other(algorithm: DnssecAlgorithm) -> DnssecAlgorithm {
    match algorithm {
        DnssecAlgorithm::ECDSAP256SHA256 => DnssecAlgorithm::ED25519,
        DnssecAlgorithm::ED25519 => DnssecAlgorithm::ECDSAP256SHA256,
    }
}

/// Why a key cannot be used. The messages never quote the key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The zone's name is not a DNS name.
    #[error("{0:?} is not a DNS name")]
    ZoneName(String),
    /// The file holds no PEM private key.
    #[error(
        "not a PEM private key: expected PKCS#8 (-----BEGIN PRIVATE KEY-----) as `openssl genpkey` writes it"
    )]
    NotPem,
    /// The key is of the other algorithm than the zone's.
    #[error(
        "the key is an {found:?} key but the zone's dnssec.algorithm is {expected:?}: make a key of that algorithm or change the algorithm together with the key"
    )]
    WrongAlgorithm {
        /// The zone's algorithm.
        expected: DnssecAlgorithm,
        /// The key's.
        found: DnssecAlgorithm,
    },
    /// The key is of neither algorithm, or damaged.
    #[error(
        "not a PKCS#8 {expected:?} private key ({detail}): make one with `openssl genpkey` (README, DNSSEC)"
    )]
    Unusable {
        /// The zone's algorithm.
        expected: DnssecAlgorithm,
        /// What the crypto library said (a fixed text, never key material).
        detail: String,
    },
}

/// A zone's signing key with its DNSKEY record data and key tag.
pub struct ZoneSigningKey {
    signer: Box<dyn SigningKey>,
    algorithm: Algorithm,
    apex: Name,
    dnskey: DNSKEY,
    key_tag: u16,
}

impl fmt::Debug for ZoneSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZoneSigningKey")
            .field("apex", &self.apex)
            .field("algorithm", &self.algorithm)
            .field("key_tag", &self.key_tag)
            .finish_non_exhaustive()
    }
}

impl ZoneSigningKey {
    /// The key in `pem` for the zone named `zone` (any case, a trailing dot optional); it must
    /// be of `algorithm`.
    pub fn for_zone(zone: &str, pem: &[u8], algorithm: DnssecAlgorithm) -> Result<Self, KeyError> {
        let mut apex = Name::from_ascii(zone.trim_end_matches('.'))
            .map_err(|_| KeyError::ZoneName(zone.to_owned()))?;
        apex.set_fqdn(true);
        Self::from_pem(apex.to_lowercase(), pem, algorithm)
    }

    /// The key in `pem` (a PKCS#8 `PRIVATE KEY`) for the zone at `apex`; it must be of
    /// `algorithm`.
    pub fn from_pem(apex: Name, pem: &[u8], algorithm: DnssecAlgorithm) -> Result<Self, KeyError> {
        // The PEM parser's errors may quote a line of the file: none is passed on.
        let der = PrivateKeyDer::from_pem_slice(pem).map_err(|_| KeyError::NotPem)?;
        let signer = match signer(&der, algorithm) {
            Ok(signer) => signer,
            Err(detail) => {
                let found = other(algorithm);
                return Err(if signer(&der, found).is_ok() {
                    KeyError::WrongAlgorithm {
                        expected: algorithm,
                        found,
                    }
                } else {
                    KeyError::Unusable {
                        expected: algorithm,
                        detail,
                    }
                });
            }
        };
        let unusable = |detail: String| KeyError::Unusable {
            expected: algorithm,
            detail,
        };
        let public = signer
            .to_public_key()
            .map_err(|e| unusable(e.to_string()))?;
        let dnskey = DNSKEY::with_flags(CSK_FLAGS, public);
        let key_tag = dnskey
            .calculate_key_tag()
            .map_err(|e| unusable(e.to_string()))?;
        Ok(Self {
            signer,
            algorithm: hickory_algorithm(algorithm),
            apex,
            dnskey,
            key_tag,
        })
    }

    /// The signing key.
    pub fn signer(&self) -> &dyn SigningKey {
        self.signer.as_ref()
    }

    /// The DNSSEC algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The zone's apex (absolute, lower case as given).
    pub fn apex(&self) -> &Name {
        &self.apex
    }

    /// The DNSKEY record data published at the apex.
    pub fn dnskey(&self) -> &DNSKEY {
        &self.dnskey
    }

    /// The key tag (RFC 4034 appendix B).
    pub fn key_tag(&self) -> u16 {
        self.key_tag
    }

    /// The DS record (SHA-256 digest) the parent zone publishes, and the DNSKEY, in
    /// presentation form.
    pub fn status(&self) -> DnssecStatus {
        let digest = self
            .dnskey
            .to_digest(&self.apex, DigestType::SHA256)
            .map(|d| data_encoding::HEXUPPER.encode(d.as_ref()))
            // The digest of a key that was just encoded cannot fail; an empty digest would
            // show as such rather than panic.
            .unwrap_or_default();
        let algorithm = u8::from(self.algorithm);
        DnssecStatus {
            key_tag: self.key_tag,
            algorithm,
            digest_type: DS_DIGEST_TYPE,
            ds: format!(
                "{} IN DS {} {algorithm} {DS_DIGEST_TYPE} {digest}",
                self.apex, self.key_tag
            ),
            dnskey: format!("{} {DNSKEY_TTL} IN DNSKEY {}", self.apex, self.dnskey),
            digest,
        }
    }
}

/// The signing key in `der`, if it is a key of `algorithm`; else what is wrong.
fn signer(
    der: &PrivateKeyDer<'_>,
    algorithm: DnssecAlgorithm,
) -> Result<Box<dyn SigningKey>, String> {
    let algorithm = hickory_algorithm(algorithm);
    match der {
        // OpenSSL writes Ed25519 keys as PKCS#8 v1 (no public key inside), which ring only
        // reads unchecked; the public key is derived from the private one either way.
        PrivateKeyDer::Pkcs8(pkcs8) if algorithm == Algorithm::ED25519 => {
            ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8.secret_pkcs8_der())
                .map(|pair| Box::new(Ed25519SigningKey::from_ed25519(pair)) as Box<dyn SigningKey>)
                .map_err(|e| e.to_string())
        }
        _ => signing_key_from_der(der, algorithm).map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests;
