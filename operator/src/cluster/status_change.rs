//! What one object's status write is to do, decided without I/O: whether the status wanted
//! differs enough from the one it has to be written (probe times and latencies alone are
//! refreshed only every [`STATUS_REFRESH`]), which events the write records, and whether it
//! counts as a failover. The reconciler patches and records what this decides.

use std::time::Duration;

use gtm_crds::AddressPoolStatus;
use gtm_crds::manifest::Kind;
use kube::runtime::events::{Event, EventType};

use super::reconciler::STATUS_REFRESH;
use crate::conditions::{FAILED_OVER, capped, flips, holds};
use crate::history::reason;
use crate::status::ObjectStatus;

/// A status to write and what follows from writing it.
pub(super) struct StatusChange {
    /// The events to record once the status is written.
    pub(super) events: Vec<Event>,
    /// Whether the object is a domain that failed over (it had a status, and `FailedOver`
    /// became true).
    pub(super) failed_over: bool,
}

/// What to write for an object whose status should be `desired` and is `current` (what this
/// leader wrote last, else what the watch cache has), `written_ago` after this leader last
/// wrote it; `None` when nothing is to be written.
pub(super) fn status_change(
    kind: Kind,
    desired: &ObjectStatus,
    current: Option<&ObjectStatus>,
    written_ago: Option<Duration>,
) -> Option<StatusChange> {
    if current == Some(desired) {
        return None;
    }
    // Probe times and latencies alone are refreshed now and then, not on every probe.
    if let (Some(ago), Some(cur)) = (written_ago, current)
        && ago < STATUS_REFRESH
        && cur.without_probe_times() == desired.without_probe_times()
    {
        return None;
    }
    let previous = current.map(ObjectStatus::conditions).unwrap_or_default();
    let mut change = StatusChange {
        events: Vec::new(),
        failed_over: false,
    };
    for c in flips(previous, desired.conditions()) {
        if c.type_ == FAILED_OVER && holds(c) && !previous.is_empty() {
            change.failed_over = true;
        }
        change.events.extend(event_for(
            kind,
            &c.type_,
            holds(c),
            &c.reason,
            &c.message,
            previous.is_empty(),
        ));
    }
    if let (Some(ObjectStatus::Pool(old)), ObjectStatus::Pool(new)) = (current, desired) {
        change.events.extend(address_events(old, new));
    }
    Some(change)
}

/// `AddressDown` and `AddressUp` events for the addresses whose availability flipped.
fn address_events(old: &AddressPoolStatus, new: &AddressPoolStatus) -> Vec<Event> {
    new.addresses
        .iter()
        .filter_map(|a| {
            let before = old.addresses.iter().find(|o| o.value == a.value)?;
            if before.available == a.available {
                return None;
            }
            let errors: Vec<String> = a
                .tasks
                .iter()
                .filter_map(|t| {
                    t.last_error
                        .as_ref()
                        .map(|e| format!("{}: {e}", t.template))
                })
                .collect();
            Some(Event {
                type_: if a.available {
                    EventType::Normal
                } else {
                    EventType::Warning
                },
                reason: if a.available {
                    reason::ADDRESS_UP
                } else {
                    reason::ADDRESS_DOWN
                }
                .into(),
                note: Some(capped(if a.available || errors.is_empty() {
                    format!(
                        "address {} is {}",
                        a.value,
                        if a.available {
                            "available"
                        } else {
                            "unavailable"
                        }
                    )
                } else {
                    format!("address {} is unavailable ({})", a.value, errors.join("; "))
                })),
                action: "HealthCheck".into(),
                secondary: None,
            })
        })
        .collect()
}

/// The event for a condition that flipped, mirroring GTM's alert types: warnings when an object
/// is refused, a signed zone's key is not usable (with the condition's reason), a pool becomes
/// unavailable, an endpoint source has no address (with the
/// condition's reason: `SourceNotFound`, `NoAddressYet`, `SourceNotWatched`) or a domain fails
/// over; normal events when they recover. A new object gets an event only when something is wrong.
fn event_for(
    kind: Kind,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    new_object: bool,
) -> Option<Event> {
    use crate::conditions::{ACCEPTED, AVAILABLE, DNSSEC_KEY_READY, ENDPOINTS_RESOLVED};
    let (warning, event_reason, action) = match (type_, status) {
        (ACCEPTED, false) => (true, reason.to_string(), "Validate"),
        (ACCEPTED, true) if !new_object => (false, "Accepted".to_string(), "Validate"),
        (AVAILABLE, false) if kind == Kind::AddressPool => {
            (true, reason::POOL_UNAVAILABLE.into(), "HealthCheck")
        }
        (AVAILABLE, true) if !new_object && kind == Kind::AddressPool => {
            (false, reason::POOL_AVAILABLE.into(), "HealthCheck")
        }
        (ENDPOINTS_RESOLVED, false) => (true, reason.to_string(), "Discover"),
        (ENDPOINTS_RESOLVED, true) if !new_object => {
            (false, "EndpointsResolved".into(), "Discover")
        }
        (DNSSEC_KEY_READY, false) => (true, reason.to_string(), "DnssecKey"),
        (DNSSEC_KEY_READY, true) if !new_object => (false, "DnssecKeyLoaded".into(), "DnssecKey"),
        (FAILED_OVER, true) => (true, reason::FAILOVER.into(), "Failover"),
        (FAILED_OVER, false) if !new_object => (false, reason::FAILBACK.into(), "Failover"),
        _ => return None,
    };
    Some(Event {
        type_: if warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: event_reason,
        note: Some(capped(message)),
        action: action.into(),
        secondary: None,
    })
}

#[cfg(test)]
mod tests {
    use gtm_crds::domain::GtmAccessDomainStatus;
    use gtm_crds::pool::{AddressStatus, HealthState, TaskStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    use super::*;
    use crate::conditions::{ACCEPTED, ENDPOINTS_RESOLVED};

    fn condition(type_: &str, status: bool, reason: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status: if status { "True" } else { "False" }.into(),
            reason: reason.into(),
            message: format!("{type_} is {status}"),
            last_transition_time: Time(Default::default()),
            observed_generation: None,
        }
    }

    fn domain(conditions: Vec<Condition>) -> ObjectStatus {
        ObjectStatus::Domain(GtmAccessDomainStatus {
            conditions,
            ..Default::default()
        })
    }

    fn reasons(change: &StatusChange) -> Vec<&str> {
        change.events.iter().map(|e| e.reason.as_str()).collect()
    }

    const LONG_AGO: Option<Duration> = Some(Duration::from_secs(3600));

    #[test]
    fn an_unchanged_status_is_not_written() {
        let s = domain(vec![condition(ACCEPTED, true, "Accepted")]);
        assert!(status_change(Kind::GtmAccessDomain, &s, Some(&s), LONG_AGO).is_none());
        assert!(status_change(Kind::GtmAccessDomain, &s, Some(&s), None).is_none());
    }

    /// A pool of one address with one `tcp` check.
    fn pool(available: bool, latency_millis: u32) -> ObjectStatus {
        ObjectStatus::Pool(AddressPoolStatus {
            addresses: vec![AddressStatus {
                value: "192.0.2.1".into(),
                state: HealthState::Unknown,
                available,
                source: None,
                since: None,
                tasks: vec![TaskStatus {
                    template: "tcp".into(),
                    port: Some(80),
                    target: None,
                    state: HealthState::Unknown,
                    since: None,
                    last_probe_time: None,
                    latency_millis: Some(latency_millis),
                    last_error: (!available).then(|| "refused".to_string()),
                    locations_up: None,
                    locations_down: None,
                }],
            }],
            ..Default::default()
        })
    }

    #[test]
    fn probe_times_alone_wait_for_the_refresh() {
        let (old, new) = (pool(true, 1), pool(true, 2));
        let recently = Some(STATUS_REFRESH / 2);
        assert!(status_change(Kind::AddressPool, &new, Some(&old), recently).is_none());
        // Written by someone else (the watch cache's status), or long ago: refreshed now.
        let change = status_change(Kind::AddressPool, &new, Some(&old), None).unwrap();
        assert!(change.events.is_empty() && !change.failed_over);
        assert!(status_change(Kind::AddressPool, &new, Some(&old), LONG_AGO).is_some());
    }

    #[test]
    fn a_new_object_gets_events_only_for_what_is_wrong_and_no_failover_count() {
        let fine = domain(vec![
            condition(ACCEPTED, true, "Accepted"),
            condition(FAILED_OVER, false, "Primary"),
        ]);
        let change = status_change(Kind::GtmAccessDomain, &fine, None, None).unwrap();
        assert!(change.events.is_empty() && !change.failed_over);

        let failed = domain(vec![condition(FAILED_OVER, true, "PoolUnavailable")]);
        let change = status_change(Kind::GtmAccessDomain, &failed, None, None).unwrap();
        assert_eq!(reasons(&change), ["Failover"]);
        assert!(!change.failed_over, "a first status is no failover");
    }

    #[test]
    fn a_flip_gives_its_event_and_a_failover_is_counted() {
        let before = domain(vec![condition(FAILED_OVER, false, "Primary")]);
        let after = domain(vec![condition(FAILED_OVER, true, "PoolUnavailable")]);
        let change = status_change(Kind::GtmAccessDomain, &after, Some(&before), LONG_AGO).unwrap();
        assert_eq!(reasons(&change), ["Failover"]);
        assert!(change.failed_over);
        let back = status_change(Kind::GtmAccessDomain, &before, Some(&after), LONG_AGO).unwrap();
        assert_eq!(reasons(&back), ["Failback"]);
        assert!(!back.failed_over);
    }

    #[test]
    fn an_endpoint_source_without_address_warns_with_its_reason_and_recovers() {
        let pool = |c| {
            ObjectStatus::Pool(AddressPoolStatus {
                conditions: vec![c],
                ..Default::default()
            })
        };
        let fine = pool(condition(ENDPOINTS_RESOLVED, true, "Resolved"));
        let missing = pool(condition(ENDPOINTS_RESOLVED, false, "SourceNotFound"));
        let new = status_change(Kind::AddressPool, &missing, None, None).unwrap();
        assert_eq!(reasons(&new), ["SourceNotFound"]);
        assert_eq!(new.events[0].type_, EventType::Warning);
        let back = status_change(Kind::AddressPool, &fine, Some(&missing), LONG_AGO).unwrap();
        assert_eq!(reasons(&back), ["EndpointsResolved"]);
        assert_eq!(back.events[0].type_, EventType::Normal);
        let quiet = status_change(Kind::AddressPool, &fine, None, None).unwrap();
        assert!(
            quiet.events.is_empty(),
            "a new pool that resolves gets no event"
        );
    }

    #[test]
    fn an_address_that_goes_down_gets_a_warning_naming_the_failed_check() {
        let flip = |from: bool, to: bool| {
            status_change(
                Kind::AddressPool,
                &pool(to, 1),
                Some(&pool(from, 1)),
                LONG_AGO,
            )
            .unwrap()
        };
        let down = flip(true, false);
        assert_eq!(reasons(&down), ["AddressDown"]);
        assert_eq!(down.events[0].type_, EventType::Warning);
        assert_eq!(
            down.events[0].note.as_deref(),
            Some("address 192.0.2.1 is unavailable (tcp: refused)")
        );
        assert_eq!(reasons(&flip(false, true)), ["AddressUp"]);
    }
}
