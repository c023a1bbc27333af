//! Signing one answer: an RRSIG per RRset of the answer and additional sections, and for a
//! negative answer the SOA's signature and the compact denial NSEC with its own.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_server::proto::ProtoError;
use hickory_server::proto::rr::{LowerName, Name, Record, RecordType};
use smallvec::SmallVec;

use super::cache::{self, Made, Subject};
use super::denial::{NXNAME, nsec};
use super::key::ZoneKey;
use crate::engine::{Answer, Compiled, Rcode};

/// The records signing adds to an answer, by section.
#[derive(Debug, Default)]
pub(crate) struct Signed {
    /// Signatures of the answer section's RRsets.
    pub answer: SmallVec<[Made; 2]>,
    /// A negative answer's proof: the SOA's signature, the NSEC and the NSEC's signature.
    pub authority: SmallVec<[Made; 2]>,
    /// Signatures of the additional section's RRsets.
    pub additional: SmallVec<[Made; 2]>,
    /// The name does not exist: compact denial answers NOERROR (NXDOMAIN only to a query
    /// that sets the Compact Answers OK flag).
    pub nxname: bool,
}

/// Seconds since the Unix epoch, as RRSIG times count them (modulo 2^32, RFC 4034 3.1.5).
fn unix_now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

/// Signs `answer` to `qname`/`qtype` with `key`, the key of the answer's zone; `compiled`
/// says which types exist at `qname` (a NODATA proof lists them). Duplicate records of one
/// RRset are dropped from the answer first (an RRset is a set, RFC 2181 5; a validator
/// would not verify a signature over a duplicate).
pub(crate) fn sign_answer(
    key: &ZoneKey,
    compiled: &Compiled,
    answer: &mut Answer<'_>,
    qname: &LowerName,
    qtype: RecordType,
) -> Result<Signed, ProtoError> {
    let now = unix_now();
    dedup(&mut answer.records);
    let mut signed = Signed {
        answer: sign_rrsets(key, &answer.records, now)?,
        ..Signed::default()
    };
    let additionals: SmallVec<[&Record; 4]> = answer.additionals.iter().collect();
    signed.additional = sign_rrsets(key, &additionals, now)?;
    let Some(zone) = answer.zone.filter(|_| answer.is_negative()) else {
        return Ok(signed);
    };
    signed.authority = sign_rrsets(key, &[&zone.soa], now)?;
    // RFC 9077: a denial's TTL is the lesser of the SOA's TTL and its MINIMUM; the SOA's TTL
    // is its MINIMUM here.
    let ttl = zone.soa.ttl;
    let owner = Name::from(qname.clone());
    let proof = if answer.rcode == Rcode::NxDomain {
        signed.nxname = true;
        // A name that does not exist is a new one at every query (random subdomains): not
        // cached, lest it push out what is reused.
        prove(key, nsec(&owner, [NXNAME], ttl), now)?
    } else {
        let subject = Subject::NoData(qname.clone(), qtype);
        cache::get_or_make(key.epoch(), subject, now, || {
            let types = compiled.types_at(qname).into_iter().filter(|t| *t != qtype);
            prove(key, nsec(&owner, types, ttl), now)
        })?
    };
    signed.authority.push(proof);
    Ok(signed)
}

/// `nsec` and its signature.
fn prove(key: &ZoneKey, nsec: Record, now: u32) -> Result<Made, ProtoError> {
    let signature = key.sign(&[&nsec], now)?;
    Ok(Arc::from(vec![nsec, signature]))
}

/// The signatures of the RRsets in `records` (each RRset's records adjacent, as answers
/// hold them), from the cache where it has them.
fn sign_rrsets(
    key: &ZoneKey,
    records: &[&Record],
    now: u32,
) -> Result<SmallVec<[Made; 2]>, ProtoError> {
    let mut signatures = SmallVec::new();
    for rrset in records.chunk_by(|a, b| a.record_type() == b.record_type() && a.name == b.name) {
        let made = cache::get_or_make(key.epoch(), cache::records(rrset), now, || {
            key.sign(rrset, now).map(|s| Arc::from(vec![s]))
        })?;
        signatures.push(made);
    }
    Ok(signatures)
}

/// Drops the records that repeat an earlier one of the same RRset.
fn dedup(records: &mut crate::engine::AnswerRecords<'_>) {
    let mut i = 1;
    while i < records.len() {
        let repeated = records[..i].iter().any(|r| {
            r.name == records[i].name
                && r.record_type() == records[i].record_type()
                && r.data == records[i].data
        });
        if repeated {
            records.remove(i);
        } else {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use gtm_crds::config::{HealthSnapshot, HealthVerdicts};
    use gtm_crds::zone::DnssecAlgorithm;
    use hickory_server::proto::dnssec::rdata::DNSSECRData;
    use hickory_server::proto::dnssec::{PublicKey, TBS};
    use hickory_server::proto::rr::{DNSClass, RData};

    use super::*;
    use crate::dnssec::ZoneKeys;
    use crate::dnssec::key::tests::P256_PEM;
    use crate::engine::tests::fixtures;
    use crate::zone::ZoneSettings;

    /// The fixture zone (name servers with glue, static records, `www`) signed.
    fn signed() -> (Compiled, Arc<ZoneKey>) {
        let mut config = fixtures::with_zone_data(1);
        config.zone_data[0].dnssec = Some(Default::default());
        let apex = Name::from_ascii(format!("{}.", fixtures::ZONE)).unwrap();
        let key = ZoneKey::from_pem(apex, P256_PEM.as_bytes(), DnssecAlgorithm::ECDSAP256SHA256);
        let key = Arc::new(key.unwrap());
        let keys = ZoneKeys::from([(fixtures::ZONE.to_string(), key.clone())]);
        let settings = ZoneSettings::default();
        let health = HealthSnapshot::empty();
        let health = HealthVerdicts::of(&health);
        let config = Arc::new(crate::shared_pools::served(config));
        let compiled = Compiled::build(config, &health, &settings, &keys, None).unwrap();
        (compiled, key)
    }

    fn ask<'c>(
        compiled: &'c Compiled,
        key: &ZoneKey,
        name: &str,
        qtype: RecordType,
    ) -> (Answer<'c>, Signed) {
        let qname = LowerName::new(&Name::from_ascii(name).unwrap());
        let mut answer = compiled.answer(&qname, qtype, None, &mut rand::rng());
        let signed = sign_answer(key, compiled, &mut answer, &qname, qtype).unwrap();
        (answer, signed)
    }

    /// Checks `rrsig` over `rrset` with the zone's DNSKEY, as a validator does.
    fn verify(key: &ZoneKey, rrsig: &Record, rrset: &[&Record]) {
        let RData::DNSSEC(DNSSECRData::RRSIG(sig)) = &rrsig.data else {
            panic!("not an RRSIG: {rrsig}")
        };
        let RData::DNSSEC(DNSSECRData::DNSKEY(dnskey)) = &key.dnskey().data else {
            panic!("not a DNSKEY")
        };
        let name = &rrset[0].name;
        let tbs = TBS::from_input(name, DNSClass::IN, sig.input(), rrset.iter().copied()).unwrap();
        dnskey.public_key().verify(tbs.as_ref(), sig.sig()).unwrap();
        assert_eq!(sig.input().type_covered, rrset[0].record_type());
    }

    /// The types an NSEC record lists.
    fn nsec_types(nsec: &Record) -> Vec<u16> {
        let RData::DNSSEC(DNSSECRData::NSEC(nsec)) = &nsec.data else {
            panic!("not an NSEC: {nsec}")
        };
        let mut types: Vec<u16> = nsec.type_bit_maps().map(u16::from).collect();
        types.sort_unstable();
        types
    }

    #[test]
    fn answers_and_their_glue_carry_signatures_that_verify_and_are_reused() {
        let (compiled, key) = signed();
        let (answer, signed) = ask(&compiled, &key, "gtm.example.com.", RecordType::NS);
        assert_eq!(signed.answer.len(), 1);
        verify(&key, &signed.answer[0][0], &answer.records);
        // Glue: one A and one AAAA set, each signed.
        assert_eq!(signed.additional.len(), 2);
        let glue_a: Vec<&Record> = answer
            .additionals
            .iter()
            .filter(|r| r.record_type() == RecordType::A)
            .collect();
        let signature_a = signed.additional.iter().find(|s| {
            matches!(&s[0].data, RData::DNSSEC(DNSSECRData::RRSIG(r)) if r.input().type_covered == RecordType::A)
        });
        verify(&key, &signature_a.unwrap()[0], &glue_a);
        assert!(signed.authority.is_empty() && !signed.nxname);

        let (_, again) = ask(&compiled, &key, "gtm.example.com.", RecordType::NS);
        assert!(Arc::ptr_eq(&signed.answer[0], &again.answer[0]), "cached");

        let (answer, signed) = ask(&compiled, &key, "gtm.example.com.", RecordType::DNSKEY);
        assert_eq!(answer.records.len(), 1);
        verify(&key, &signed.answer[0][0], &answer.records);
    }

    #[test]
    fn nodata_is_proven_by_the_nsec_at_the_name_without_the_type_asked() {
        let (compiled, key) = signed();
        let (answer, signed) = ask(&compiled, &key, "www.gtm.example.com.", RecordType::AAAA);
        assert!(answer.is_negative() && !signed.nxname);
        let zone = answer.zone.unwrap();
        verify(&key, &signed.authority[0][0], &[&zone.soa]);
        let proof = &signed.authority[1];
        assert_eq!(proof[0].name.to_string(), "www.gtm.example.com.");
        assert_eq!(nsec_types(&proof[0]), [1, 46, 47], "A RRSIG NSEC");
        verify(&key, &proof[1], &[&proof[0]]);
        // The apex lists what it holds, DNSKEY included.
        let (_, apex) = ask(&compiled, &key, "gtm.example.com.", RecordType::AAAA);
        let types = nsec_types(&apex.authority[1][0]);
        for t in [2, 6, 48] {
            assert!(types.contains(&t), "{t} in {types:?}");
        }
    }

    #[test]
    fn a_missing_name_is_proven_by_a_compact_nxname_denial() {
        let (compiled, key) = signed();
        let (answer, signed) = ask(&compiled, &key, "nope.gtm.example.com.", RecordType::A);
        assert_eq!(answer.rcode, Rcode::NxDomain);
        assert!(signed.nxname);
        let proof = &signed.authority[1];
        assert_eq!(nsec_types(&proof[0]), [46, 47, 128], "RRSIG NSEC NXNAME");
        verify(&key, &proof[1], &[&proof[0]]);
    }

    #[test]
    fn a_repeated_record_is_answered_and_signed_once() {
        let name = Name::from_ascii("a.gtm.example.com.").unwrap();
        let rdata = RData::A(hickory_server::proto::rr::rdata::A::new(192, 0, 2, 1));
        let one = Record::from_rdata(name.clone(), 30, rdata.clone());
        let two = Record::from_rdata(name, 30, rdata);
        let mut records: crate::engine::AnswerRecords<'_> = [&one, &two].into_iter().collect();
        dedup(&mut records);
        assert_eq!(records.len(), 1);
    }
}
