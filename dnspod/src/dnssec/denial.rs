//! Compact denial of existence (draft-ietf-dnsop-compact-denial-of-existence): the one NSEC
//! record that proves a negative answer, owned by the queried name. Pure.

use hickory_server::proto::dnssec::rdata::{DNSSECRData, NSEC};
use hickory_server::proto::rr::domain::Label;
use hickory_server::proto::rr::{Name, RData, Record, RecordType};

/// The NXNAME pseudo-type: "this name does not exist" in a compact denial's type bitmap.
pub(super) const NXNAME: RecordType = RecordType::Unknown(128);

/// The NSEC at `qname` listing `types` (RRSIG and NSEC are added), next name `\000.<qname>`:
/// the interval it claims empty holds no name but `qname` itself. A name too long to take
/// one more label gets `qname` itself as next name (the NSEC still matches `qname`, which is
/// all a validator checks for NODATA and NXNAME).
pub(super) fn nsec(qname: &Name, types: impl IntoIterator<Item = RecordType>, ttl: u32) -> Record {
    let next = Label::from_raw_bytes(&[0])
        .and_then(|zero| qname.prepend_label(zero))
        .unwrap_or_else(|_| qname.clone());
    Record::from_rdata(
        qname.clone(),
        ttl,
        RData::DNSSEC(DNSSECRData::NSEC(NSEC::new_cover_self(next, types))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nsec_of_a_name_points_just_past_it_and_lists_its_types() {
        let qname = Name::from_ascii("nope.gtm.example.com.").unwrap();
        let record = nsec(&qname, [NXNAME], 30);
        let RData::DNSSEC(DNSSECRData::NSEC(nsec)) = &record.data else {
            panic!("not an NSEC")
        };
        assert_eq!(
            nsec.next_domain_name().to_string(),
            "\\000.nope.gtm.example.com."
        );
        let mut types: Vec<u16> = nsec.type_bit_maps().map(u16::from).collect();
        types.sort_unstable();
        assert_eq!(types, [46, 47, 128]);
        assert_eq!((record.name.clone(), record.ttl), (qname, 30));
    }

    #[test]
    fn a_name_at_the_length_limit_points_to_itself() {
        let label = "a".repeat(63);
        let long =
            Name::from_ascii(format!("{label}.{label}.{label}.{}.", "b".repeat(61))).unwrap();
        let record = nsec(&long, [RecordType::A], 30);
        let RData::DNSSEC(DNSSECRData::NSEC(nsec)) = &record.data else {
            panic!("not an NSEC")
        };
        assert_eq!(nsec.next_domain_name(), &long);
    }
}
