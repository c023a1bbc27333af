//! HTTP and HTTPS probes: one request, judged on its status code and optionally on a text in
//! the first 64 KiB of its body.

use std::error::Error as _;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use gtm_crds::template::{HttpCheck, HttpMethod, StatusCodeRange};
use reqwest::header::{HOST, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Response, Url};

use super::http_clients::{ClientKey, HttpClients};
use super::target::Target;
use crate::outcome::ProbeError;

/// How much of a body a probe reads, at most, looking for the expected text.
const BODY_LIMIT: usize = 64 * 1024;
/// How much of the expected text an error message quotes.
const QUOTED_NEEDLE_CHARS: usize = 64;

/// One HTTP(S) probe to make.
pub(super) struct HttpRequest<'a> {
    pub(super) check: &'a HttpCheck,
    /// HTTPS rather than HTTP.
    pub(super) tls: bool,
    pub(super) target: &'a Target,
    /// The address the target resolved to: the one connected to, whatever name the URL has.
    pub(super) ip: IpAddr,
    pub(super) port: u16,
}

/// Sends the request and judges the response; the latency runs from sending the request to
/// the verdict (the connection and TLS handshake included, name resolution not).
pub(super) async fn probe(
    clients: &HttpClients,
    request: &HttpRequest<'_>,
) -> Result<Duration, ProbeError> {
    let check = request.check;
    let expected = ExpectedCodes::new(&check.expected_codes)?;
    let (url, key) = request.url_and_client_key()?;
    let client = clients.client(key)?;
    let started = Instant::now();
    let mut response = client
        .request(method(check.method), url)
        .headers(headers(check)?)
        .send()
        .await
        .map_err(classify)?;
    let code = response.status().as_u16();
    if !expected.contains(code) {
        return Err(ProbeError::UnexpectedStatus {
            code,
            expected: expected.text,
        });
    }
    if let Some(needle) = &check.body_contains
        && check.method != HttpMethod::HEAD
    {
        find_in_body(&mut response, needle).await?;
    }
    Ok(started.elapsed())
}

impl HttpRequest<'_> {
    /// The URL and the client to send it with. The URL names a host when there is one to
    /// present (HTTPS: `sni`, else `host`, else the target's host name; HTTP: the target's
    /// host name), pinned to the resolved address so that the client connects there while
    /// sending that name as TLS server name and default Host header; else it names the address.
    fn url_and_client_key(&self) -> Result<(Url, ClientKey), ProbeError> {
        let check = self.check;
        let presented = if self.tls {
            let host = check.host.as_deref().map(without_port);
            check.sni.as_deref().or(host).or(self.target.host_name())
        } else {
            self.target.host_name()
        };
        let name = presented.filter(|name| name.parse::<IpAddr>().is_err());
        let authority = match (name, self.ip) {
            (Some(name), _) => name.to_owned(),
            (None, IpAddr::V4(ip)) => ip.to_string(),
            (None, IpAddr::V6(ip)) => format!("[{ip}]"),
        };
        let scheme = if self.tls { "https" } else { "http" };
        let path = &check.path;
        let text = format!("{scheme}://{authority}:{}{path}", self.port);
        let url = Url::parse(&text)
            .map_err(|e| ProbeError::InvalidCheck(format!("invalid URL {text}: {e}")))?;
        let key = ClientKey {
            follow_redirects: check.follow_redirects,
            verify_certificate: !self.tls || check.verify_certificate.unwrap_or(true),
            pinned: name.map(|name| (name.to_owned(), SocketAddr::new(self.ip, self.port))),
        };
        Ok((url, key))
    }
}

/// A Host header value without its port, to use as a TLS server name.
fn without_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

fn method(method: HttpMethod) -> Method {
    match method {
        HttpMethod::GET => Method::GET,
        HttpMethod::HEAD => Method::HEAD,
        HttpMethod::POST => Method::POST,
    }
}

/// The template's Host header and extra headers.
fn headers(check: &HttpCheck) -> Result<HeaderMap, ProbeError> {
    let invalid = |name: &str| ProbeError::InvalidCheck(format!("invalid header {name:?}"));
    let mut map = HeaderMap::new();
    if let Some(host) = &check.host {
        map.insert(
            HOST,
            HeaderValue::from_str(host).map_err(|_| invalid("Host"))?,
        );
    }
    for header in &check.headers {
        let name = HeaderName::from_bytes(header.name.as_bytes());
        let value = HeaderValue::from_str(&header.value);
        match (name, value) {
            (Ok(name), Ok(value)) => map.insert(name, value),
            _ => return Err(invalid(&header.name)),
        };
    }
    Ok(map)
}

/// The status codes a template accepts.
struct ExpectedCodes {
    ranges: Vec<(u16, u16)>,
    /// As the template writes them, for messages.
    text: String,
}

impl ExpectedCodes {
    fn new(codes: &[StatusCodeRange]) -> Result<Self, ProbeError> {
        let ranges = codes
            .iter()
            .map(|code| {
                code.bounds().ok_or_else(|| {
                    ProbeError::InvalidCheck(format!("invalid expected code {:?}", code.0))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let text = codes
            .iter()
            .map(|code| code.0.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        Ok(Self { ranges, text })
    }

    fn contains(&self, code: u16) -> bool {
        self.ranges
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&code))
    }
}

/// Streams the body until the text shows up or [`BODY_LIMIT`] bytes were read, keeping only
/// the bytes a match could still start in.
async fn find_in_body(response: &mut Response, needle: &str) -> Result<(), ProbeError> {
    let needle = needle.as_bytes();
    if needle.is_empty() {
        return Ok(());
    }
    let mut window = Vec::new();
    let mut read = 0;
    while read < BODY_LIMIT {
        let Some(chunk) = response.chunk().await.map_err(classify)? else {
            break;
        };
        let take = chunk.len().min(BODY_LIMIT - read);
        read += take;
        window.extend_from_slice(&chunk[..take]);
        if window.windows(needle.len()).any(|w| w == needle) {
            return Ok(());
        }
        let keep = needle.len() - 1;
        window.drain(..window.len().saturating_sub(keep));
    }
    let quoted = String::from_utf8_lossy(needle)
        .chars()
        .take(QUOTED_NEEDLE_CHARS)
        .collect();
    Err(ProbeError::BodyMismatch { needle: quoted })
}

/// Words a failed request for people: the TLS error in its chain of causes when there is one,
/// else the innermost socket error, else the innermost message.
fn classify(err: reqwest::Error) -> ProbeError {
    if err.is_redirect() {
        return ProbeError::Http("too many redirects".into());
    }
    let causes: Vec<&(dyn std::error::Error + 'static)> =
        std::iter::successors(err.source(), |&cause| next_cause(cause)).collect();
    if let Some(tls) = causes
        .iter()
        .find_map(|c| c.downcast_ref::<rustls::Error>())
    {
        return tls_failure(tls);
    }
    if let Some(io) = causes
        .iter()
        .rev()
        .find_map(|c| c.downcast_ref::<io::Error>())
    {
        return ProbeError::connect(io);
    }
    let innermost = causes
        .last()
        .map_or_else(|| err.to_string(), ToString::to_string);
    if err.is_connect() {
        ProbeError::Connect(innermost)
    } else {
        ProbeError::Http(innermost)
    }
}

/// The cause of an error; for an I/O error, the error it wraps (which `source` skips).
fn next_cause<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a (dyn std::error::Error + 'static)> {
    match err.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
        Some(wrapped) => Some(wrapped),
        None => err.source(),
    }
}

fn tls_failure(err: &rustls::Error) -> ProbeError {
    match err {
        rustls::Error::InvalidCertificate(cert) => ProbeError::Certificate(cert.to_string()),
        other => ProbeError::Tls(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(json: serde_json::Value) -> HttpCheck {
        serde_json::from_value(json).unwrap()
    }

    fn request<'a>(check: &'a HttpCheck, tls: bool, target: &'a Target) -> HttpRequest<'a> {
        HttpRequest {
            check,
            tls,
            target,
            ip: [192, 0, 2, 7].into(),
            port: 8443,
        }
    }

    #[test]
    fn https_presents_sni_then_host_then_target_name() {
        let ip = Target::parse("192.0.2.7");
        let name = Target::parse("app.example.com");
        let cases = [
            (
                json_check(Some("sni.example"), Some("h.example:8443")),
                &ip,
                "sni.example",
            ),
            (json_check(None, Some("h.example:8443")), &ip, "h.example"),
            (json_check(None, None), &name, "app.example.com"),
        ];
        for (check, target, expected) in cases {
            let (url, key) = request(&check, true, target).url_and_client_key().unwrap();
            assert_eq!(url.host_str(), Some(expected));
            let pinned = key.pinned.unwrap();
            assert_eq!(pinned.0, expected);
            assert_eq!(pinned.1, "192.0.2.7:8443".parse().unwrap());
        }
    }

    #[test]
    fn plain_http_to_an_address_pins_nothing() {
        let target = Target::parse("192.0.2.7");
        let check = json_check(None, Some("h.example"));
        let (url, key) = request(&check, false, &target)
            .url_and_client_key()
            .unwrap();
        assert_eq!(url.as_str(), "http://192.0.2.7:8443/health");
        assert_eq!(key.pinned, None);
        assert!(key.verify_certificate);
    }

    fn json_check(sni: Option<&str>, host: Option<&str>) -> HttpCheck {
        check(serde_json::json!({ "path": "/health", "sni": sni, "host": host }))
    }

    #[test]
    fn expected_codes_accept_codes_and_ranges() {
        let codes = ["200", "300-302"].map(|c| StatusCodeRange(c.into()));
        let expected = ExpectedCodes::new(&codes).unwrap();
        assert!(expected.contains(200) && expected.contains(301));
        assert!(!expected.contains(204) && !expected.contains(303));
        assert_eq!(expected.text, "200, 300-302");
        let bad = [StatusCodeRange("2xx".into())];
        assert!(matches!(
            ExpectedCodes::new(&bad),
            Err(ProbeError::InvalidCheck(_))
        ));
    }

    #[test]
    fn ports_are_cut_from_host_names_only() {
        assert_eq!(without_port("a.example:8080"), "a.example");
        assert_eq!(without_port("a.example"), "a.example");
        assert_eq!(without_port("::1"), "::1");
    }
}
