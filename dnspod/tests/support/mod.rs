//! Test support: a DNS pod on 127.0.0.1 with a given config, and a small DNS client built on
//! hickory-proto messages over tokio sockets.
#![allow(dead_code)]

pub(crate) mod files;
pub(crate) mod fixtures;
pub(crate) mod process;

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use gtm_crds::config::{GtmConfig, HealthSnapshot};
use gtm_crds::parts::Payload;
use gtm_dnspod::geoip::GeoIp;
use gtm_dnspod::handler::GtmHandler;
use gtm_dnspod::server::DnsServer;
use gtm_dnspod::state::{Loader, Shared};
use gtm_dnspod::udp_limits::UdpLimits;
use gtm_dnspod::zone::ZoneSettings;
use hickory_server::proto::op::{Edns, Message, Query};
use hickory_server::proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_server::proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

/// How long a test waits for one response before failing.
pub(crate) const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// A DNS pod serving on an ephemeral port of 127.0.0.1.
pub(crate) struct TestPod {
    /// UDP and TCP address.
    pub(crate) addr: SocketAddr,
    /// The served state.
    pub(crate) shared: Arc<Shared>,
    /// The loader feeding `shared`.
    pub(crate) loader: Loader,
    /// The handler the server answers with (to call its paths directly).
    pub(crate) handler: GtmHandler,
    shutdown: CancellationToken,
}

impl TestPod {
    /// A pod with nothing loaded yet, its UDP responses capped as by default but not rate
    /// limited (every test client is 127.0.0.1).
    pub(crate) async fn empty(geoip: Option<GeoIp>) -> Self {
        Self::limited(geoip, no_rrl()).await
    }

    /// A pod with nothing loaded yet and these UDP limits.
    pub(crate) async fn limited(geoip: Option<GeoIp>, limits: UdpLimits) -> Self {
        let shared = Shared::new();
        let handler = GtmHandler::new(shared.clone(), geoip.map(Arc::new)).with_udp_limits(limits);
        Self::answering(shared, handler).await
    }

    /// A pod with nothing loaded yet, answering with `handler` (which serves `shared`).
    pub(crate) async fn answering(shared: Arc<Shared>, handler: GtmHandler) -> Self {
        let mut dns = DnsServer::bind(&["127.0.0.1:0".parse().unwrap()], handler.clone())
            .await
            .expect("bind");
        let shutdown = dns.server.shutdown_token().clone();
        let addr = dns.addrs[0];
        tokio::spawn(async move { dns.server.block_until_done().await });
        Self {
            addr,
            loader: Loader::new(shared.clone(), ZoneSettings::default()),
            shared,
            handler,
            shutdown,
        }
    }

    /// A pod serving `config` with `health`.
    pub(crate) async fn serving(config: &GtmConfig, health: &HealthSnapshot) -> Self {
        Self::serving_with(config, health, None).await
    }

    /// A pod serving `config` with `health`, locating clients with `geoip`.
    pub(crate) async fn serving_with(
        config: &GtmConfig,
        health: &HealthSnapshot,
        geoip: Option<GeoIp>,
    ) -> Self {
        let mut pod = Self::empty(geoip).await;
        pod.load(config, health);
        pod
    }

    /// Offers a config and a health snapshot.
    pub(crate) fn load(&mut self, config: &GtmConfig, health: &HealthSnapshot) {
        self.loader
            .offer(Payload::Health, serde_json::to_vec(health).unwrap())
            .expect("health accepted");
        self.loader
            .offer(Payload::Config, config.to_json())
            .expect("config accepted");
    }
}

impl Drop for TestPod {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The UDP limits of a test pod: capped as by default but not rate limited (every test client
/// is 127.0.0.1).
pub(crate) fn no_rrl() -> UdpLimits {
    UdpLimits {
        rrl: None,
        ..UdpLimits::default()
    }
}

/// A query for `name`/`qtype`, without EDNS.
pub(crate) fn query(name: &str, qtype: RecordType) -> Message {
    let mut m = Message::query();
    m.add_query(Query::query(Name::from_str(name).unwrap(), qtype));
    m
}

/// A query with EDNS advertising `payload` bytes.
pub(crate) fn query_edns(name: &str, qtype: RecordType, payload: u16) -> Message {
    let mut m = query(name, qtype);
    let mut edns = Edns::new();
    edns.set_max_payload(payload);
    m.set_edns(edns);
    m
}

/// A query with EDNS and a Client Subnet option.
pub(crate) fn query_ecs(name: &str, qtype: RecordType, addr: &str, source_prefix: u8) -> Message {
    let mut m = query_edns(name, qtype, 1232);
    let ecs = ClientSubnet::new(IpAddr::from_str(addr).unwrap(), source_prefix, 0);
    m.edns
        .as_mut()
        .unwrap()
        .options_mut()
        .insert(EdnsOption::Subnet(ecs));
    m
}

/// The ECS option of a response.
pub(crate) fn response_ecs(m: &Message) -> Option<ClientSubnet> {
    match m.edns.as_ref()?.option(EdnsCode::Subnet)? {
        EdnsOption::Subnet(s) => Some(*s),
        _ => None,
    }
}

/// Sends raw bytes over UDP and returns the raw reply, if one comes within `wait`.
pub(crate) async fn udp_raw(addr: SocketAddr, bytes: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(bytes, addr).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let n = tokio::time::timeout(wait, socket.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    buf.truncate(n);
    Some(buf)
}

/// Exchanges a message over UDP.
pub(crate) async fn udp(addr: SocketAddr, m: &Message) -> Message {
    let reply = udp_raw(addr, &m.to_vec().unwrap(), REPLY_TIMEOUT)
        .await
        .expect("a UDP reply");
    let reply = Message::from_vec(&reply).expect("a decodable reply");
    assert_eq!(reply.metadata.id, m.metadata.id);
    reply
}

/// Sends raw bytes as one length-prefixed TCP message and returns the raw reply.
pub(crate) async fn tcp_raw(addr: SocketAddr, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr).await?;
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    stream.write_all(&framed).await?;
    let read = async {
        let len = stream.read_u16().await? as usize;
        let mut buf = vec![0u8; len];
        stream.read_exact(&mut buf).await?;
        Ok(buf)
    };
    tokio::time::timeout(REPLY_TIMEOUT, read)
        .await
        .map_err(|_| std::io::Error::other("TCP reply timed out"))?
}

/// Exchanges a message over TCP.
pub(crate) async fn tcp(addr: SocketAddr, m: &Message) -> Message {
    let reply = tcp_raw(addr, &m.to_vec().unwrap())
        .await
        .expect("a TCP reply");
    let reply = Message::from_vec(&reply).expect("a decodable reply");
    assert_eq!(reply.metadata.id, m.metadata.id);
    reply
}

/// Both transports, for tests that must hold over each.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
}

impl Transport {
    /// Both.
    pub(crate) const BOTH: [Transport; 2] = [Transport::Udp, Transport::Tcp];

    /// Exchanges a message.
    pub(crate) async fn exchange(self, addr: SocketAddr, m: &Message) -> Message {
        match self {
            Self::Udp => udp(addr, m).await,
            Self::Tcp => tcp(addr, m).await,
        }
    }
}

/// The data of a section's records, rendered.
pub(crate) fn data(records: &[hickory_server::proto::rr::Record]) -> Vec<String> {
    records.iter().map(|r| r.data.to_string()).collect()
}
