//! The DS record of a DNSKEY (RFC 4034 section 5.1.4, SHA-256 digest), computed here from the
//! DNSKEY a DNS pod serves, independently of the DNSSEC code of the binaries under test: the
//! end-to-end tests compare it with the DS the operator shows in `GtmZone.status.dnssec.ds`.

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

/// The DS record of `zone`'s DNSKEY whose RDATA is `dnskey` in presentation form
/// (`257 3 13 <base64>`), as `<zone>. IN DS <tag> <algorithm> 2 <HEX>`.
pub fn ds_of_dnskey(zone: &str, dnskey: &str) -> anyhow::Result<String> {
    let fields: Vec<&str> = dnskey.split_whitespace().collect();
    let [flags, protocol, algorithm, key @ ..] = fields.as_slice() else {
        anyhow::bail!("not a DNSKEY: {dnskey:?}");
    };
    let (flags, protocol, algorithm): (u16, u8, u8) =
        (flags.parse()?, protocol.parse()?, algorithm.parse()?);
    let key = base64::engine::general_purpose::STANDARD.decode(key.concat())?;
    let mut rdata = flags.to_be_bytes().to_vec();
    rdata.extend([protocol, algorithm]);
    rdata.extend(&key);
    let owner = zone.trim_end_matches('.').to_ascii_lowercase();
    let mut wire = Vec::new();
    for label in owner.split('.') {
        wire.push(u8::try_from(label.len())?);
        wire.extend(label.as_bytes());
    }
    wire.push(0);
    wire.extend(&rdata);
    let digest: String = Sha256::digest(&wire)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    Ok(format!(
        "{owner}. IN DS {} {algorithm} 2 {digest}",
        key_tag(&rdata)
    ))
}

/// The key tag of a DNSKEY's RDATA (RFC 4034 appendix B).
fn key_tag(rdata: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for (i, byte) in rdata.iter().enumerate() {
        sum += if i % 2 == 0 {
            u32::from(*byte) << 8
        } else {
            u32::from(*byte)
        };
    }
    sum += (sum >> 16) & 0xFFFF;
    (sum & 0xFFFF) as u16
}

#[cfg(test)]
mod tests {
    /// The DNSKEY of `crds/tests/keys/p256.pem` and its DS as `dnssec-dsfromkey -2` computes it.
    #[test]
    fn gives_the_ds_bind_computes() {
        let ds = super::ds_of_dnskey(
            "GTM.example.com.",
            "257 3 13 Lg6kxou4jfqeodFMNe8TGxw2Rs2APC8ajmGcd1+jng6LVPwY Lq9lBnIZhmEnfE2iD3ipf533sA5Zp7wTTkILQQ==",
        )
        .unwrap();
        assert_eq!(
            ds,
            "gtm.example.com. IN DS 58220 13 2 FEE52E5B84EFDC57D29CC033AED157AE9A5F8E5F9BD6181ED9BB0658CB9971A3"
        );
        assert!(super::ds_of_dnskey("gtm.example.com", "257 3").is_err());
    }
}
