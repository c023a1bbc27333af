//! ICMP echo probes. One socket per address family serves every probe: an unprivileged
//! datagram ICMP socket where `net.ipv4.ping_group_range` admits this process, else a raw one
//! (which needs `CAP_NET_RAW`).

use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use gtm_crds::template::IcmpCheck;
use surge_ping::{Client, Config, ICMP, PingIdentifier, PingSequence, SurgeError};
use tokio::sync::OnceCell;

use crate::outcome::ProbeError;

/// Echo requests of one probe go out over at most this long ...
const MAX_SPREAD: Duration = Duration::from_secs(1);
/// ... and within the first half of the probe's time.
const SPREAD_SHARE: u32 = 2;
/// Bytes of payload per echo request.
const PAYLOAD: [u8; 16] = *b"kube-gtm-prober\0";

/// The ICMP sockets, opened on first use; a failed open is retried by the next probe.
#[derive(Default)]
pub(super) struct IcmpClients {
    v4: OnceCell<Client>,
    v6: OnceCell<Client>,
    /// Sequence numbers are unique across all probes sharing a socket, so that replies find
    /// their request even where the kernel owns the echo identifier (datagram sockets).
    next_sequence: AtomicU16,
}

impl IcmpClients {
    async fn client(&self, ip: IpAddr) -> Result<&Client, ProbeError> {
        let (cell, kind) = match ip {
            IpAddr::V4(_) => (&self.v4, ICMP::V4),
            IpAddr::V6(_) => (&self.v6, ICMP::V6),
        };
        cell.get_or_try_init(|| async { open(kind) }).await
    }
}

fn open(kind: ICMP) -> Result<Client, ProbeError> {
    Client::new(&Config::builder().kind(kind).build()).map_err(|err| {
        tracing::debug!(%err, "cannot open an ICMP socket");
        unavailable(&err)
    })
}

fn unavailable(err: &io::Error) -> ProbeError {
    ProbeError::IcmpUnavailable(if err.kind() == io::ErrorKind::PermissionDenied {
        "unprivileged ICMP sockets are not allowed (sysctl net.ipv4.ping_group_range) \
         and raw ICMP sockets need the NET_RAW capability"
            .to_owned()
    } else {
        format!("cannot open an ICMP socket: {err}")
    })
}

/// Sends the template's echo requests, spread over the first half of the time left, and waits
/// for replies until shortly before `deadline`. Passes when the loss is within the tolerance;
/// the latency is the mean round trip of the replies.
pub(super) async fn probe(
    clients: &IcmpClients,
    ip: IpAddr,
    check: &IcmpCheck,
    deadline: Instant,
) -> Result<Duration, ProbeError> {
    let client = clients.client(ip).await?;
    let sent = check.packet_count.max(1);
    let left = deadline.saturating_duration_since(Instant::now());
    let replies_until = deadline - left / 10;
    let spacing = (left / SPREAD_SHARE).min(MAX_SPREAD) / u32::from(sent);
    let ident = PingIdentifier(fastrand::u16(..));
    let pings = (0..sent).map(|i| async move {
        tokio::time::sleep(spacing * u32::from(i)).await;
        let mut pinger = client.pinger(ip, ident).await;
        pinger.timeout(replies_until.saturating_duration_since(Instant::now()));
        let sequence = clients.next_sequence.fetch_add(1, Ordering::Relaxed);
        pinger.ping(PingSequence(sequence), &PAYLOAD).await
    });
    let results = futures::future::join_all(pings).await;
    let round_trips: Vec<Duration> = results
        .iter()
        .filter_map(|result| result.as_ref().ok().map(|(_, rtt)| *rtt))
        .collect();
    if round_trips.is_empty()
        && let Some(err) = results.iter().find_map(send_failure)
    {
        return Err(ProbeError::connect(err));
    }
    judge(sent, &round_trips, check.tolerated_loss_percent)
}

/// Passes when the share of `sent` echo requests without a reply is within
/// `tolerated_percent`; the latency is the mean round trip.
fn judge(
    sent: u8,
    round_trips: &[Duration],
    tolerated_percent: u8,
) -> Result<Duration, ProbeError> {
    let replies = u8::try_from(round_trips.len()).expect("at most `sent` replies");
    let lost = sent.saturating_sub(replies);
    if u32::from(lost) * 100 > u32::from(tolerated_percent) * u32::from(sent) {
        return Err(ProbeError::PacketLoss {
            sent,
            lost,
            tolerated_percent,
        });
    }
    let total: Duration = round_trips.iter().sum();
    Ok(total / u32::from(replies.max(1)))
}

/// The socket error that kept an echo request from leaving, if that is why it failed.
fn send_failure<T>(result: &Result<T, SurgeError>) -> Option<&io::Error> {
    match result {
        Err(SurgeError::IOError(err)) => Some(err),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn loss_within_the_tolerance_passes_with_the_mean_round_trip() {
        assert_eq!(judge(3, &[MS, 3 * MS], 34), Ok(2 * MS));
        assert_eq!(judge(1, &[5 * MS], 0), Ok(5 * MS));
        assert_eq!(judge(2, &[], 100), Ok(Duration::ZERO));
    }

    #[test]
    fn loss_beyond_the_tolerance_fails() {
        let err = judge(3, &[MS, MS], 33).unwrap_err();
        assert_eq!(
            err.to_string(),
            "1 of 3 ICMP echo requests lost (33% loss tolerated)"
        );
        assert_eq!(err.reason(), "PacketLoss");
    }

    #[test]
    fn a_refused_socket_names_both_ways_to_allow_icmp() {
        let err = unavailable(&io::Error::from(io::ErrorKind::PermissionDenied));
        let message = err.to_string();
        assert!(message.starts_with("ICMP unavailable: "), "{message}");
        assert!(message.contains("ping_group_range") && message.contains("NET_RAW"));
        assert_eq!(err.reason(), "IcmpUnavailable");
    }
}
