//! A zone's static record sets ([`RecordSetConfig`]) as DNS records. Pure: no I/O.

use gtm_crds::config::{RecordData, RecordSetConfig};
use gtm_crds::zone::CaaData;
use hickory_server::proto::rr::rdata::{A, AAAA, MX, SRV, TXT};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use hickory_server::proto::serialize::binary::{BinDecoder, Restrict};

use crate::zone::absolute_name;

/// Longest character-string in a TXT record (RFC 1035 section 3.3).
const CHARACTER_STRING_MAX: usize = 255;

/// The records of one set, owned by `set.name`; an error names the value that is not usable.
pub(crate) fn records(set: &RecordSetConfig) -> Result<Vec<Record>, String> {
    let owner =
        absolute_name(&set.name).ok_or_else(|| format!("{:?} is not a DNS name", set.name))?;
    let rdata: Vec<RData> = match &set.data {
        RecordData::A { addresses } => addresses.iter().map(|a| RData::A(A(*a))).collect(),
        RecordData::AAAA { addresses } => addresses.iter().map(|a| RData::AAAA(AAAA(*a))).collect(),
        RecordData::TXT { text } => text.iter().map(|t| RData::TXT(txt(t))).collect(),
        RecordData::MX { mx } => mx
            .iter()
            .map(|m| Ok(RData::MX(MX::new(m.preference, target(&m.exchange)?))))
            .collect::<Result<_, String>>()?,
        RecordData::SRV { srv } => srv
            .iter()
            .map(|s| {
                Ok(RData::SRV(SRV::new(
                    s.priority,
                    s.weight,
                    s.port,
                    target(&s.target)?,
                )))
            })
            .collect::<Result<_, String>>()?,
        RecordData::CAA { caa } => caa.iter().map(caa_rdata).collect::<Result<_, String>>()?,
    };
    Ok(rdata
        .into_iter()
        .map(|r| Record::from_rdata(owner.clone(), set.ttl, r))
        .collect())
}

/// The host name an MX or SRV record points at (`.`: none, the root).
pub(crate) fn target(name: &str) -> Result<Name, String> {
    if name == "." {
        return Ok(Name::root());
    }
    absolute_name(name).ok_or_else(|| format!("{name:?} is not a host name"))
}

/// One TXT record holding `text`, cut into character-strings of at most 255 bytes (on character
/// boundaries, so that each piece stays valid UTF-8); readers join them.
fn txt(text: &str) -> TXT {
    let mut pieces: Vec<&[u8]> = Vec::new();
    let mut rest = text;
    while rest.len() > CHARACTER_STRING_MAX {
        let mut cut = CHARACTER_STRING_MAX;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (piece, tail) = rest.split_at(cut);
        pieces.push(piece.as_bytes());
        rest = tail;
    }
    pieces.push(rest.as_bytes());
    TXT::from_bytes(pieces)
}

/// A CAA record with exactly the flags, tag and value given (RFC 8659 section 4.1), read from
/// its wire form so that the value is sent as written.
fn caa_rdata(caa: &CaaData) -> Result<RData, String> {
    let tag_len =
        u8::try_from(caa.tag.len()).map_err(|_| format!("CAA tag {:?} is too long", caa.tag))?;
    let mut wire = Vec::with_capacity(2 + caa.tag.len() + caa.value.len());
    wire.push(caa.flags);
    wire.push(tag_len);
    wire.extend_from_slice(caa.tag.as_bytes());
    wire.extend_from_slice(caa.value.as_bytes());
    let len = u16::try_from(wire.len()).map_err(|_| "CAA value is too long".to_string())?;
    RData::read(
        &mut BinDecoder::new(&wire),
        RecordType::CAA,
        Restrict::new(len),
    )
    .map_err(|e| format!("CAA {} {:?}: {e}", caa.tag, caa.value))
}

#[cfg(test)]
mod tests {
    use gtm_crds::zone::{MxData, SrvData};
    use hickory_server::proto::serialize::binary::{BinEncodable, BinEncoder};

    use super::*;

    fn set(data: RecordData) -> RecordSetConfig {
        RecordSetConfig {
            name: "gtm.example.com".into(),
            ttl: 60,
            data,
        }
    }

    #[test]
    fn long_texts_become_one_record_of_several_character_strings() {
        let long = "é".repeat(200); // 400 bytes
        let records = records(&set(RecordData::TXT {
            text: vec!["short".into(), long.clone()],
        }))
        .unwrap();
        assert_eq!(records.len(), 2);
        let RData::TXT(t) = &records[1].data else {
            panic!("not TXT")
        };
        let pieces: Vec<&[u8]> = t.txt_data.iter().map(|p| &p[..]).collect();
        assert_eq!(pieces.len(), 2);
        assert!(
            pieces
                .iter()
                .all(|p| p.len() <= 255 && std::str::from_utf8(p).is_ok())
        );
        assert_eq!(pieces.concat(), long.as_bytes());
        assert_eq!(records[1].ttl, 60);
        assert_eq!(records[1].name.to_string(), "gtm.example.com.");
    }

    #[test]
    fn caa_records_carry_flags_tag_and_value_as_written() {
        let records = records(&set(RecordData::CAA {
            caa: vec![CaaData {
                flags: 128,
                tag: "issue".into(),
                value: "letsencrypt.org; validationmethods=dns-01".into(),
            }],
        }))
        .unwrap();
        let mut wire = Vec::new();
        records[0]
            .data
            .emit(&mut BinEncoder::new(&mut wire))
            .unwrap();
        let mut expected = vec![128, 5];
        expected.extend_from_slice(b"issue");
        expected.extend_from_slice(b"letsencrypt.org; validationmethods=dns-01");
        assert_eq!(wire, expected);
    }

    #[test]
    fn mx_and_srv_point_at_absolute_names_or_the_root() {
        let mx = records(&set(RecordData::MX {
            mx: vec![MxData {
                preference: 0,
                exchange: ".".into(),
            }],
        }))
        .unwrap();
        let RData::MX(m) = &mx[0].data else {
            panic!("not MX")
        };
        assert!(m.exchange.is_root());
        let srv = records(&set(RecordData::SRV {
            srv: vec![SrvData {
                priority: 1,
                weight: 2,
                port: 5060,
                target: "Sip.Example.NET".into(),
            }],
        }))
        .unwrap();
        let RData::SRV(s) = &srv[0].data else {
            panic!("not SRV")
        };
        assert_eq!((s.priority, s.weight, s.port), (1, 2, 5060));
        assert_eq!(s.target, Name::from_ascii("sip.example.net.").unwrap());
    }
}
