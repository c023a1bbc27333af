//! TCP under pressure, over real sockets: connections beyond the caps are closed while the open
//! ones are served, and a process out of file descriptors neither spins nor stops serving once
//! connections close.

mod support;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use gtm_crds::parts::Payload;
use gtm_dnspod::handler::GtmHandler;
use gtm_dnspod::server::DnsServer;
use gtm_dnspod::state::{Loader, Shared};
use gtm_dnspod::tcp::TcpLimits;
use gtm_dnspod::zone::ZoneSettings;
use hickory_server::proto::op::Message;
use hickory_server::proto::rr::RecordType;
use support::files::*;
use support::fixtures::*;
use support::process::DnsPodProcess;
use support::{REPLY_TIMEOUT, data, query};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const WWW: &str = "www.gtm.example.com.";

/// A TCP connection from a given loopback address.
async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

/// One query and its response on an open connection; an error when the server closed it.
async fn exchange(stream: &mut TcpStream) -> io::Result<Message> {
    let bytes = query(WWW, RecordType::A).to_vec().unwrap();
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    // A write to a connection the server already closed may still succeed; the read tells.
    let _ = stream.write_all(&framed).await;
    let read = async {
        let len = stream.read_u16().await? as usize;
        let mut buf = vec![0u8; len];
        stream.read_exact(&mut buf).await?;
        Ok(Message::from_vec(&buf).expect("a decodable reply"))
    };
    tokio::time::timeout(REPLY_TIMEOUT, read)
        .await
        .map_err(|_| io::Error::other("no reply and not closed"))?
}

async fn served(stream: &mut TcpStream) -> bool {
    match exchange(stream).await {
        Ok(reply) => {
            assert_eq!(data(&reply.answers), ["192.0.2.1"]);
            true
        }
        Err(_) => false,
    }
}

/// A DNS server on `addrs` within `limits`, answering `www` with 192.0.2.1.
async fn serve_www(addrs: &[&str], limits: TcpLimits) -> DnsServer {
    let shared = Shared::new();
    let mut loader = Loader::new(shared.clone(), ZoneSettings::default());
    loader
        .offer(Payload::Config, www_only(1, "192.0.2.1").to_json())
        .unwrap();
    let addrs: Vec<SocketAddr> = addrs.iter().map(|a| a.parse().unwrap()).collect();
    DnsServer::bind_limited(&addrs, GtmHandler::new(shared, None), limits)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_caps_are_closed_while_open_ones_are_served() {
    let limits = TcpLimits {
        max_connections: 3,
        max_connections_per_source: 2,
        ..TcpLimits::default()
    };
    let mut dns = serve_www(&["127.0.0.1:0"], limits).await;
    let addr = dns.addrs[0];

    // Two from one source: served; a third from it: closed.
    let mut a1 = connect_from("127.0.0.1", addr).await;
    assert!(served(&mut a1).await);
    let mut a2 = connect_from("127.0.0.1", addr).await;
    assert!(served(&mut a2).await);
    let mut a3 = connect_from("127.0.0.1", addr).await;
    assert!(!served(&mut a3).await, "over the per-source cap");
    // Another source: served until the total cap.
    let mut b1 = connect_from("127.0.0.2", addr).await;
    assert!(served(&mut b1).await);
    let mut c1 = connect_from("127.0.0.3", addr).await;
    assert!(!served(&mut c1).await, "over the total cap");
    // The open connections are still served, several queries each.
    for stream in [&mut a1, &mut a2, &mut b1] {
        assert!(served(stream).await);
        assert!(served(stream).await);
    }
    // A closed connection makes room.
    drop(a1);
    let mut admitted = false;
    for _ in 0..100 {
        let mut c2 = connect_from("127.0.0.3", addr).await;
        if served(&mut c2).await {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(admitted, "a connection is admitted once another closed");
    dns.server.shutdown_gracefully().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caps_count_connections_on_every_listen_address_together() {
    let limits = TcpLimits {
        max_connections: 1,
        ..TcpLimits::default()
    };
    let mut dns = serve_www(&["127.0.0.1:0", "127.0.0.2:0"], limits).await;
    let mut first = connect_from("127.0.0.3", dns.addrs[0]).await;
    assert!(served(&mut first).await);
    let mut second = connect_from("127.0.0.4", dns.addrs[1]).await;
    assert!(
        !served(&mut second).await,
        "the total cap is the process's, not one address's"
    );
    assert!(served(&mut first).await);
    dns.server.shutdown_gracefully().await.unwrap();
}

/// CPU time (user + system) of a process, in clock ticks.
#[cfg(target_os = "linux")]
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses: utime and stime are 14 and 15.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_the_pod_backs_off_and_recovers() {
    let tmp = tempdir();
    write_atomically(
        tmp.as_path(),
        "config.json",
        &www_only(1, "192.0.2.1").to_json(),
    );
    // Caps above the descriptor limit, so that the limit is what stops accepting.
    let mut pod = DnsPodProcess::start(
        "ulimit -n 64;",
        &[
            "--config-dir",
            tmp.as_path().to_str().unwrap(),
            "--tcp-max-connections",
            "1000",
            "--tcp-max-connections-per-source",
            "1000",
        ],
    );
    pod.wait_for_log("serving new snapshot");
    let mut clients = Vec::new();
    for _ in 0..100 {
        clients.push(TcpStream::connect(pod.dns).await.unwrap());
    }
    pod.wait_for_log("cannot accept TCP connections; backing off");
    // Out of descriptors with connections waiting: a spinning accept loop would burn a core.
    let before = cpu_ticks(pod.pid());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let used = cpu_ticks(pod.pid()) - before;
    assert!(
        used < 25,
        "{used} ticks of CPU in one second while out of descriptors"
    );
    assert!(pod.is_running());

    drop(clients);
    let mut ready = false;
    for _ in 0..100 {
        if pod.http_status("/readyz") == Some(200) {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "/readyz answers once the connections closed");
    let mut stream = TcpStream::connect(pod.dns).await.unwrap();
    assert!(served(&mut stream).await);
}
