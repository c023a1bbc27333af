//! A zone's signing key: read from a PEM file (PKCS#8, what `openssl genpkey` writes), with
//! the DNSKEY record it publishes and the DS record its parent needs.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use gtm_crds::dnssec::{ZoneSigningKey, key_file_name};
use gtm_crds::zone::DnssecAlgorithm;
use hickory_server::proto::ProtoError;
use hickory_server::proto::dnssec::TBS;
use hickory_server::proto::dnssec::rdata::{DNSSECRData, RRSIG, SigInput};
use hickory_server::proto::rr::{DNSClass, Name, RData, Record, SerialNumber};

pub use gtm_crds::dnssec::DNSKEY_TTL;
/// Signatures are valid from this long before they are made (clocks of validators lag).
const INCEPTION_SKEW: u32 = 3600;
/// Signatures are valid for this long after they are made.
const VALIDITY: u32 = 7 * 86400;

/// Why a zone's key could not be used.
#[derive(Debug, thiserror::Error)]
#[error("DNSSEC key of zone {zone} ({path}): {reason}")]
pub struct KeyError {
    /// The zone.
    pub zone: String,
    /// The key file.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

/// The key file of `zone` (canonical) in `dir`: `<zone>.key`.
pub fn key_file(dir: &Path, zone: &str) -> PathBuf {
    dir.join(key_file_name(zone))
}

/// A zone's signing key with its DNSKEY record.
pub struct ZoneKey {
    key: ZoneSigningKey,
    dnskey: Record,
    ds: String,
    /// Unique to this load: cached signatures are keyed by it (see `cache`).
    epoch: u64,
}

impl fmt::Debug for ZoneKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZoneKey")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// Every key load gets its own epoch.
static EPOCHS: AtomicU64 = AtomicU64::new(1);

impl ZoneKey {
    /// Reads the key of `zone` (canonical) from `dir` ([`key_file`]); it must be of
    /// `algorithm`.
    pub fn load(dir: &Path, zone: &str, algorithm: DnssecAlgorithm) -> Result<Self, KeyError> {
        let path = key_file(dir, zone);
        let err = |reason: String| KeyError {
            zone: zone.to_owned(),
            path: path.display().to_string(),
            reason,
        };
        let pem = std::fs::read(&path).map_err(|e| err(e.to_string()))?;
        let apex = crate::zone::absolute_name(zone).ok_or_else(|| err("not a DNS name".into()))?;
        Self::from_pem(apex, &pem, algorithm).map_err(err)
    }

    /// The key in `pem` (a PKCS#8 `PRIVATE KEY`) for the zone at `apex`.
    pub fn from_pem(apex: Name, pem: &[u8], algorithm: DnssecAlgorithm) -> Result<Self, String> {
        let key = ZoneSigningKey::from_pem(apex, pem, algorithm).map_err(|e| e.to_string())?;
        let dnskey = Record::from_rdata(
            key.apex().clone(),
            DNSKEY_TTL,
            RData::DNSSEC(DNSSECRData::DNSKEY(key.dnskey().clone())),
        );
        Ok(Self {
            ds: key.status().ds,
            dnskey,
            key,
            epoch: EPOCHS.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// The DNSKEY record at the apex.
    pub fn dnskey(&self) -> &Record {
        &self.dnskey
    }

    /// The DS record (SHA-256 digest) the parent zone publishes, in presentation form.
    pub fn ds(&self) -> &str {
        &self.ds
    }

    /// The key tag.
    pub fn key_tag(&self) -> u16 {
        self.key.key_tag()
    }

    /// This load's epoch.
    pub(super) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The RRSIG over `rrset` (records of one owner, type and TTL, no duplicates; not empty),
    /// made at `now` (seconds since the epoch).
    pub(super) fn sign(&self, rrset: &[&Record], now: u32) -> Result<Record, ProtoError> {
        let first = rrset.first().ok_or("an empty RRset has no signature")?;
        let input = SigInput {
            type_covered: first.record_type(),
            algorithm: self.key.algorithm(),
            num_labels: first.name.num_labels(),
            original_ttl: first.ttl,
            sig_expiration: SerialNumber::new(now.wrapping_add(VALIDITY)),
            sig_inception: SerialNumber::new(now.wrapping_sub(INCEPTION_SKEW)),
            key_tag: self.key.key_tag(),
            signer_name: self.key.apex().clone(),
        };
        let tbs = TBS::from_input(&first.name, DNSClass::IN, &input, rrset.iter().copied())?;
        let signature = self
            .key
            .signer()
            .sign(&tbs)
            .map_err(|e| ProtoError::from(format!("signing failed: {e}")))?;
        Ok(Record::from_rdata(
            first.name.clone(),
            first.ttl,
            RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, signature))),
        ))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A P-256 key (`openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`).
    pub(crate) const P256_PEM: &str = include_str!("../../../crds/tests/keys/p256.pem");

    #[test]
    fn a_p256_key_gives_a_csk_and_its_ds() {
        let apex = Name::from_ascii("gtm.example.com.").unwrap();
        let key =
            ZoneKey::from_pem(apex, P256_PEM.as_bytes(), DnssecAlgorithm::ECDSAP256SHA256).unwrap();
        let RData::DNSSEC(DNSSECRData::DNSKEY(dnskey)) = &key.dnskey().data else {
            panic!("not a DNSKEY")
        };
        assert_eq!(dnskey.flags(), 257);
        assert!(
            key.ds()
                .starts_with(&format!("gtm.example.com. IN DS {} 13 2 ", key.key_tag()))
        );
        assert_eq!(key.ds().split(' ').nth(6).unwrap().len(), 64);
    }

    /// An Ed25519 key (`openssl genpkey -algorithm ed25519`).
    const ED25519_PEM: &str = include_str!("../../../crds/tests/keys/ed25519.pem");

    #[test]
    fn an_ed25519_key_signs_what_its_dnskey_verifies() {
        use hickory_server::proto::dnssec::PublicKey;
        use hickory_server::proto::rr::rdata::A;

        let apex = Name::from_ascii("gtm.example.com.").unwrap();
        let key = ZoneKey::from_pem(
            apex.clone(),
            ED25519_PEM.as_bytes(),
            DnssecAlgorithm::ED25519,
        )
        .unwrap();
        assert!(key.ds().contains(" 15 2 "), "{}", key.ds());
        let www = Name::from_ascii("www.gtm.example.com.").unwrap();
        let record = Record::from_rdata(www.clone(), 30, RData::A(A::new(192, 0, 2, 1)));
        let rrsig = key.sign(&[&record], 1_800_000_000).unwrap();
        let RData::DNSSEC(DNSSECRData::RRSIG(sig)) = &rrsig.data else {
            panic!("not an RRSIG")
        };
        let RData::DNSSEC(DNSSECRData::DNSKEY(dnskey)) = &key.dnskey().data else {
            panic!("not a DNSKEY")
        };
        let tbs = TBS::from_input(&www, DNSClass::IN, sig.input(), [&record].into_iter()).unwrap();
        dnskey.public_key().verify(tbs.as_ref(), sig.sig()).unwrap();
        let later = sig.input().sig_expiration.get() - sig.input().sig_inception.get();
        assert_eq!(later, VALIDITY + INCEPTION_SKEW);
    }

    #[test]
    fn a_key_of_another_algorithm_is_refused() {
        let apex = Name::from_ascii("gtm.example.com.").unwrap();
        let error = ZoneKey::from_pem(apex.clone(), P256_PEM.as_bytes(), DnssecAlgorithm::ED25519)
            .unwrap_err();
        assert!(error.contains("ED25519"), "{error}");
        assert!(ZoneKey::from_pem(apex, b"junk", DnssecAlgorithm::ED25519).is_err());
    }
}
