//! The EDNS Client Subnet option of a query (RFC 7871), read from the query's wire form and
//! checked strictly as section 6 asks, which hickory's decoder does not: it ignores address
//! bytes beyond the source prefix and a scope in a query. Malformed means FORMERR:
//!
//! - an unknown family, or a source prefix longer than the family's addresses;
//! - a non-zero SCOPE PREFIX-LENGTH (a query has no scope yet);
//! - an ADDRESS of any other length than the source prefix needs (`ceil(prefix / 8)` bytes);
//! - address bits set beyond the source prefix;
//! - the option twice.
//!
//! What passes is echoed from the same fields, so the response carries the query's address
//! byte for byte.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_server::proto::rr::rdata::opt::ClientSubnet;

/// The OPT record type.
const OPT: u16 = 41;
/// The ECS option code.
const ECS: u16 = 8;

/// The query's ECS option is malformed (answer FORMERR).
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

/// The ECS option of the DNS message `packet`, if it has one.
pub fn query_subnet(packet: &[u8]) -> Result<Option<ClientSubnet>, Malformed> {
    let mut found = None;
    for option in opt_options(packet).ok_or(Malformed)? {
        let (code, data) = option.ok_or(Malformed)?;
        if code == ECS {
            if found.is_some() {
                return Err(Malformed);
            }
            found = Some(subnet(data)?);
        }
    }
    Ok(found)
}

/// One ECS option's data, checked.
pub(crate) fn subnet(data: &[u8]) -> Result<ClientSubnet, Malformed> {
    let [f0, f1, source, scope, address @ ..] = data else {
        return Err(Malformed);
    };
    let max = match u16::from_be_bytes([*f0, *f1]) {
        1 => 32,
        2 => 128,
        _ => return Err(Malformed),
    };
    if *source > max || *scope != 0 || address.len() != usize::from(source.div_ceil(8)) {
        return Err(Malformed);
    }
    let mut octets = [0u8; 16];
    octets[..address.len()].copy_from_slice(address);
    let bits = u128::from_be_bytes(octets);
    let host_bits = u128::MAX.checked_shr(u32::from(*source)).unwrap_or(0);
    if bits & host_bits != 0 {
        return Err(Malformed);
    }
    let addr = if max == 32 {
        IpAddr::V4(Ipv4Addr::new(octets[0], octets[1], octets[2], octets[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(octets))
    };
    Ok(ClientSubnet::new(addr, *source, 0))
}

/// The options of the message's OPT record (none without one); `None` when the message does
/// not parse. Each item is an option's code and data, `None` for a cut option.
fn opt_options(packet: &[u8]) -> Option<impl Iterator<Item = Option<(u16, &[u8])>>> {
    let word = |at: usize| Some(u16::from_be_bytes([*packet.get(at)?, *packet.get(at + 1)?]));
    let (questions, records) = (
        word(4)?,
        u32::from(word(6)?) + u32::from(word(8)?) + u32::from(word(10)?),
    );
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(packet, at)? + 4;
    }
    let mut rdata: &[u8] = &[];
    for _ in 0..records {
        at = skip_name(packet, at)?;
        let rtype = word(at)?;
        let len = usize::from(word(at + 8)?);
        let data = packet.get(at + 10..at + 10 + len)?;
        if rtype == OPT {
            rdata = data;
        }
        at += 10 + len;
    }
    let mut rest = rdata;
    Some(std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let option = match rest {
            [c0, c1, l0, l1, tail @ ..] => {
                let len = usize::from(u16::from_be_bytes([*l0, *l1]));
                tail.get(..len).map(|data| {
                    let code = u16::from_be_bytes([*c0, *c1]);
                    rest = &tail[len..];
                    (code, data)
                })
            }
            _ => None,
        };
        if option.is_none() {
            rest = &[];
        }
        Some(option)
    }))
}

/// The offset after the (possibly compressed) name at `at`.
fn skip_name(packet: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *packet.get(at)?;
        match len & 0xC0 {
            0 if len == 0 => return Some(at + 1),
            0 => at += 1 + usize::from(len),
            0xC0 => return Some(at + 2).filter(|end| *end <= packet.len()),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `a.` with an OPT record holding `options` (code, data).
    fn query(options: &[(u16, &[u8])]) -> Vec<u8> {
        let mut p = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, b'a', 0, 0, 1, 0, 1];
        let mut rdata = Vec::new();
        for (code, data) in options {
            rdata.extend_from_slice(&code.to_be_bytes());
            rdata.extend_from_slice(&(data.len() as u16).to_be_bytes());
            rdata.extend_from_slice(data);
        }
        p.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0]);
        p.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        p.extend_from_slice(&rdata);
        p
    }

    fn parse(ecs: &[u8]) -> Result<Option<ClientSubnet>, Malformed> {
        query_subnet(&query(&[(ECS, ecs)]))
    }

    #[test]
    fn well_formed_subnets_are_read() {
        let s = parse(&[0, 1, 24, 0, 10, 1, 2]).unwrap().unwrap();
        assert_eq!(
            (s.addr(), s.source_prefix(), s.scope_prefix()),
            ("10.1.2.0".parse().unwrap(), 24, 0)
        );
        let s = parse(&[0, 2, 0, 0]).unwrap().unwrap();
        assert_eq!((s.addr(), s.source_prefix()), ("::".parse().unwrap(), 0));
        let mapped = [
            0, 2, 120, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2,
        ];
        let s = parse(&mapped).unwrap().unwrap();
        assert_eq!(s.addr(), "::ffff:10.1.2.0".parse::<IpAddr>().unwrap());
        assert_eq!(query_subnet(&query(&[(10, b"cookie!!")])), Ok(None));
        let mut no_opt = query(&[])[..19].to_vec();
        no_opt[11] = 0;
        assert_eq!(query_subnet(&no_opt), Ok(None), "no OPT");
    }

    #[test]
    fn section_6_violations_are_malformed() {
        for (bad, why) in [
            (
                &[0, 1, 24, 0, 10, 1, 2, 3][..],
                "an address byte beyond /24",
            ),
            (&[0, 1, 24, 0, 10, 1, 2, 0][..], "a zero byte beyond /24"),
            (&[0, 1, 24, 0, 10, 1][..], "too short"),
            (&[0, 1, 24, 16, 10, 1, 2][..], "a scope in a query"),
            (&[0, 1, 23, 0, 10, 1, 3][..], "a bit beyond /23"),
            (&[0, 1, 33, 0, 10, 1, 2, 3, 4][..], "prefix over 32"),
            (&[0, 3, 0, 0][..], "unknown family"),
            (&[0, 1, 0][..], "cut"),
        ] {
            assert_eq!(parse(bad), Err(Malformed), "{why}");
        }
        let twice = query(&[(ECS, &[0, 1, 8, 0, 10]), (ECS, &[0, 1, 8, 0, 10])]);
        assert_eq!(query_subnet(&twice), Err(Malformed), "twice");
        let mut cut = query(&[(ECS, &[0, 1, 8, 0, 10])]);
        cut.pop();
        assert_eq!(query_subnet(&cut), Err(Malformed), "cut message");
    }
}
