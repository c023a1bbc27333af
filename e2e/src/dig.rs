//! `dig` (ISC BIND's, Debian package bind9-dnsutils, which `scripts/install-test-tools.sh`
//! installs) as the tests' second DNS client: its response as it prints it, read into the
//! header's status and flags and the records of each section.

use std::net::SocketAddr;

use anyhow::{Context as _, Result, bail};
use tokio::process::Command;

use crate::wait::{Check, Deadline, wait_for};

/// One response as `dig` printed it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dig {
    /// The response code, e.g. `NOERROR`.
    pub status: String,
    /// The header flags, e.g. `["qr", "aa"]`.
    pub flags: Vec<String>,
    /// The answer section: one `name ttl class type data` line per record, whitespace folded.
    pub answer: Vec<String>,
    /// The authority section, as `answer`.
    pub authority: Vec<String>,
    /// The additional section, as `answer`, without the OPT pseudo-record.
    pub additional: Vec<String>,
}

impl Dig {
    /// Whether a header flag is set (`aa`, `tc`, ...).
    pub fn flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// The data of the answer records (what follows the type), in order.
    pub fn answer_data(&self) -> Vec<String> {
        self.answer
            .iter()
            .map(|line| line.splitn(5, ' ').nth(4).unwrap_or_default().to_string())
            .collect()
    }

    /// Reads `dig`'s default output.
    pub fn parse(text: &str) -> Result<Self> {
        let mut dig = Self::default();
        let mut section: Option<&mut Vec<String>> = None;
        for line in text.lines() {
            if let Some(rest) = line.split_once("status: ").map(|(_, r)| r) {
                dig.status = rest.split(',').next().unwrap_or_default().to_string();
            } else if let Some(rest) = line.strip_prefix(";; flags: ") {
                let flags = rest.split(';').next().unwrap_or_default();
                dig.flags = flags.split_whitespace().map(str::to_string).collect();
            } else if line.starts_with(";; ANSWER SECTION:") {
                section = Some(&mut dig.answer);
            } else if line.starts_with(";; AUTHORITY SECTION:") {
                section = Some(&mut dig.authority);
            } else if line.starts_with(";; ADDITIONAL SECTION:") {
                section = Some(&mut dig.additional);
            } else if line.trim().is_empty() || line.starts_with(';') {
                if line.trim().is_empty() {
                    section = None;
                }
            } else if let Some(records) = section.as_deref_mut() {
                records.push(line.split_whitespace().collect::<Vec<_>>().join(" "));
            }
        }
        if dig.status.is_empty() {
            bail!("no response header in dig's output:\n{text}");
        }
        Ok(dig)
    }
}

/// Asks `server` for `name` `rtype` with `dig +norec` and the extra options given (`+tcp`,
/// `+bufsize=N`, `+noedns`, ...).
pub async fn dig(server: SocketAddr, name: &str, rtype: &str, options: &[&str]) -> Result<Dig> {
    let output = Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string()])
        .args([name, rtype, "+norec", "+time=2", "+tries=1"])
        .args(options)
        .output()
        .await
        .context("running dig (install it with scripts/install-test-tools.sh)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "dig {name} {rtype} failed ({}): {text}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Dig::parse(&text)
}

/// Asks `server` with [`dig`] until `ready` holds for the response, for up to `deadline`;
/// panics (a test failing) with the last response otherwise.
pub async fn wait_dig(
    server: SocketAddr,
    name: &str,
    rtype: &str,
    options: &[&str],
    deadline: Deadline,
    ready: impl Fn(&Dig) -> bool,
) -> Dig {
    wait_for(
        &format!("dig @{server} {name} {rtype} {options:?}"),
        deadline,
        || async {
            let d = dig(server, name, rtype, options).await?;
            anyhow::Ok(if ready(&d) {
                Check::Ready(d)
            } else {
                Check::Pending(format!("{d:?}"))
            })
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digs_output_is_read_into_status_flags_and_sections() {
        let text = "
; <<>> DiG 9.18 <<>> @127.0.0.1 -p 5353 gtm.example.com NS +norec
;; global options: +cmd
;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 4242
;; flags: qr aa; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 2

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags:; udp: 1232
;; QUESTION SECTION:
;gtm.example.com.\t\tIN\tNS

;; ANSWER SECTION:
gtm.example.com.\t3600\tIN\tNS\tns1.gtm.example.com.

;; ADDITIONAL SECTION:
ns1.gtm.example.com.\t3600\tIN\tA\t127.0.0.1

;; Query time: 0 msec
";
        let d = Dig::parse(text).unwrap();
        assert_eq!(d.status, "NOERROR");
        assert!(d.flag("aa") && !d.flag("tc"));
        assert_eq!(
            d.answer,
            ["gtm.example.com. 3600 IN NS ns1.gtm.example.com."]
        );
        assert_eq!(d.answer_data(), ["ns1.gtm.example.com."]);
        assert!(d.authority.is_empty());
        assert_eq!(d.additional, ["ns1.gtm.example.com. 3600 IN A 127.0.0.1"]);
        assert!(Dig::parse(";; connection timed out; no servers could be reached").is_err());
    }
}
