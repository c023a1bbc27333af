//! DNSSEC online signing: a zone's key ([`ZoneKey`]), the signatures of the RRsets of an
//! answer and the proof of a negative one ([`sign_answer`]), made when the query sets DO.
//!
//! Decisions (README, "DNSSEC"):
//!
//! - One combined signing key per zone (CSK: DNSKEY flags 257, zone key and secure entry
//!   point) signs every RRset, the DNSKEY RRset included: one DS at the parent, one signature
//!   per RRset. ECDSA P-256 SHA-256 (13) or Ed25519 (15), on ring through hickory.
//! - Signatures are valid from one hour before signing (clock skew) to seven days after,
//!   cached per thread and per RRset and re-made after a day, so a served signature always
//!   has six days or more left (far beyond the longest TTL, 1 day).
//! - Denial of existence is compact (draft-ietf-dnsop-compact-denial-of-existence, the
//!   "black lies" Cloudflare, NS1, Route 53 and PowerDNS serve): one NSEC at the queried name
//!   whose next name is `\000.<qname>`, listing the types present there; a name that does
//!   not exist gets types `RRSIG NSEC NXNAME` and response code NOERROR (NXDOMAIN when the
//!   query sets the Compact Answers OK EDNS flag). One signature proves either case, and a
//!   zone walk learns nothing.

mod cache;
mod denial;
mod key;
mod sign;

pub use key::{DNSKEY_TTL, KeyError, ZoneKey, key_file};

/// The signing keys of the signed zones, by zone (canonical).
pub type ZoneKeys = std::collections::BTreeMap<String, std::sync::Arc<ZoneKey>>;
pub(crate) use cache::Made;
pub(crate) use sign::{Signed, sign_answer};
