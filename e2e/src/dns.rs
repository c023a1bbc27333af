//! DNS queries from the test host to the DNS pods, over UDP or TCP, through the kind port
//! mapping (`127.0.0.1:30053`). Messages are built and parsed with hickory-proto; the transport
//! is a plain socket, so a test sees exactly one query and one response.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How a query travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// One datagram each way.
    Udp,
    /// Length-prefixed messages over one connection (RFC 1035 4.2.2).
    Tcp,
}

/// The parts of a response the tests assert on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Response code.
    pub rcode: ResponseCode,
    /// The AA flag.
    pub authoritative: bool,
    /// The TC flag.
    pub truncated: bool,
    /// The answer section's record data as text (`192.0.2.1`, `target.example.com.`), in order.
    pub records: Vec<String>,
    /// The answer section's record types, in the same order.
    pub types: Vec<RecordType>,
}

impl Answer {
    /// The answer's record data, sorted: for comparisons that ignore rotation.
    pub fn sorted(&self) -> Vec<String> {
        let mut records = self.records.clone();
        records.sort();
        records
    }
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{} [{}]",
            self.rcode,
            if self.authoritative { " aa" } else { "" },
            self.records.join(", ")
        )
    }
}

/// Sends one query for (`name`, `rtype`) to `server` and waits up to `timeout` for its response.
pub async fn query(
    server: SocketAddr,
    name: &str,
    rtype: RecordType,
    transport: Transport,
    timeout: Duration,
) -> Result<Answer> {
    let id: u16 = rand_id();
    let mut message = Message::query();
    message.metadata.id = id;
    message.metadata.recursion_desired = false;
    message.add_query(Query::query(
        Name::from_str(name).with_context(|| format!("bad name {name}"))?,
        rtype,
    ));
    let bytes = message.to_vec().context("encoding the query")?;
    let response = tokio::time::timeout(timeout, exchange(server, &bytes, transport))
        .await
        .with_context(|| {
            format!("no {transport:?} answer from {server} for {name} {rtype} within {timeout:?}")
        })??;
    let response = Message::from_vec(&response).context("decoding the response")?;
    ensure!(
        response.metadata.id == id,
        "response id {} does not match query id {id}",
        response.metadata.id
    );
    Ok(Answer {
        rcode: response.metadata.response_code,
        authoritative: response.metadata.authoritative,
        truncated: response.metadata.truncation,
        records: response
            .answers
            .iter()
            .map(|r| r.data.to_string())
            .collect(),
        types: response.answers.iter().map(|r| r.record_type()).collect(),
    })
}

/// Like [`query`], with up to `tries` attempts: for loops that must tell a lost datagram from an
/// outage.
pub async fn query_with_retries(
    server: SocketAddr,
    name: &str,
    rtype: RecordType,
    transport: Transport,
    timeout: Duration,
    tries: u32,
) -> Result<Answer> {
    let mut last = None;
    for _ in 0..tries.max(1) {
        match query(server, name, rtype, transport, timeout).await {
            Ok(answer) => return Ok(answer),
            Err(error) => last = Some(error),
        }
    }
    Err(last.expect("at least one try"))
}

async fn exchange(server: SocketAddr, query: &[u8], transport: Transport) -> Result<Vec<u8>> {
    match transport {
        Transport::Udp => {
            let bind: SocketAddr = if server.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            }
            .parse()?;
            let socket = UdpSocket::bind(bind).await?;
            socket.connect(server).await?;
            socket.send(query).await?;
            let mut buf = vec![0; 65_535];
            let n = socket.recv(&mut buf).await?;
            buf.truncate(n);
            Ok(buf)
        }
        Transport::Tcp => {
            let mut stream = TcpStream::connect(server).await?;
            let len = u16::try_from(query.len()).context("query too long for TCP framing")?;
            stream.write_all(&len.to_be_bytes()).await?;
            stream.write_all(query).await?;
            let len = stream.read_u16().await? as usize;
            if len == 0 {
                bail!("empty TCP response");
            }
            let mut buf = vec![0; len];
            stream.read_exact(&mut buf).await?;
            Ok(buf)
        }
    }
}

/// A query id that differs between queries (time-based; no need for unpredictability here).
fn rand_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos as u16) ^ NEXT.fetch_add(0x9e37, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{MessageType, OpCode};
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{RData, Record};
    use std::net::Ipv4Addr;
    use tokio::net::TcpListener;

    /// An authoritative answer to `query`: the A records given for `app.test.`, NXDOMAIN otherwise.
    fn respond(query: &[u8], addresses: &[Ipv4Addr]) -> Vec<u8> {
        let request = Message::from_vec(query).unwrap();
        let mut response = Message::new(request.metadata.id, MessageType::Response, OpCode::Query);
        response.metadata.authoritative = true;
        let q = request.queries[0].clone();
        let known = q.name().to_ascii() == "app.test.";
        if known {
            for a in addresses {
                response.add_answer(Record::from_rdata(q.name().clone(), 30, RData::A(A(*a))));
            }
        } else {
            response.metadata.response_code = ResponseCode::NXDomain;
        }
        response.add_query(q);
        response.to_vec().unwrap()
    }

    /// A one-shot local DNS responder on 127.0.0.1 over UDP and TCP, same port number.
    async fn responder(addresses: Vec<Ipv4Addr>) -> SocketAddr {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        let tcp = TcpListener::bind(addr).await.unwrap();
        let udp_addresses = addresses.clone();
        tokio::spawn(async move {
            let mut buf = vec![0; 4096];
            loop {
                let (n, peer) = udp.recv_from(&mut buf).await.unwrap();
                udp.send_to(&respond(&buf[..n], &udp_addresses), peer)
                    .await
                    .unwrap();
            }
        });
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = tcp.accept().await.unwrap();
                let len = stream.read_u16().await.unwrap() as usize;
                let mut buf = vec![0; len];
                stream.read_exact(&mut buf).await.unwrap();
                let response = respond(&buf, &addresses);
                stream
                    .write_all(&(response.len() as u16).to_be_bytes())
                    .await
                    .unwrap();
                stream.write_all(&response).await.unwrap();
            }
        });
        addr
    }

    const TIMEOUT: Duration = Duration::from_secs(2);

    #[tokio::test]
    async fn udp_query_returns_the_records_in_order() {
        let server = responder(vec![
            Ipv4Addr::new(192, 0, 2, 2),
            Ipv4Addr::new(192, 0, 2, 1),
        ])
        .await;
        let answer = query(server, "app.test", RecordType::A, Transport::Udp, TIMEOUT)
            .await
            .unwrap();
        assert_eq!(answer.rcode, ResponseCode::NoError);
        assert!(answer.authoritative);
        assert!(!answer.truncated);
        assert_eq!(answer.records, ["192.0.2.2", "192.0.2.1"]);
        assert_eq!(answer.sorted(), ["192.0.2.1", "192.0.2.2"]);
        assert_eq!(answer.types, [RecordType::A, RecordType::A]);
        assert_eq!(answer.to_string(), "No Error aa [192.0.2.2, 192.0.2.1]");
    }

    #[tokio::test]
    async fn tcp_query_uses_length_framing() {
        let server = responder(vec![Ipv4Addr::new(198, 51, 100, 7)]).await;
        let answer = query(server, "APP.test.", RecordType::A, Transport::Tcp, TIMEOUT)
            .await
            .unwrap();
        assert_eq!(answer.records, ["198.51.100.7"]);
    }

    #[tokio::test]
    async fn rcode_is_reported() {
        let server = responder(vec![]).await;
        let answer = query(server, "other.test", RecordType::A, Transport::Udp, TIMEOUT)
            .await
            .unwrap();
        assert_eq!(answer.rcode, ResponseCode::NXDomain);
        assert!(answer.records.is_empty());
    }

    #[tokio::test]
    async fn silence_is_a_timeout_naming_the_server_and_query() {
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let server = silent.local_addr().unwrap();
        let error = query_with_retries(
            server,
            "app.test",
            RecordType::A,
            Transport::Udp,
            Duration::from_millis(100),
            2,
        )
        .await
        .unwrap_err();
        let text = format!("{error:#}");
        assert!(
            text.contains(&server.to_string()) && text.contains("app.test A"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_bad_name_is_an_error_not_a_panic() {
        let server: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let long = "a".repeat(64);
        assert!(
            query(server, &long, RecordType::A, Transport::Udp, TIMEOUT)
                .await
                .is_err()
        );
    }
}
