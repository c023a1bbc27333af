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
