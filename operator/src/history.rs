//! The history step: which transitions a new status records in the object's `history`, next to
//! the previous status, and how the history is kept bounded. Pure: a transition is a difference
//! between the previous status and the new one, so computing the same status again records
//! nothing; a replay of the last transitions (the same status written from an older one) is
//! recognised and not recorded twice.

use gtm_crds::AddressPoolStatus;
use gtm_crds::domain::GtmAccessDomainStatus;
use gtm_crds::history::{HistoryEntry, MAX_HISTORY};
use gtm_crds::pool::AddressStatus;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::conditions::{AVAILABLE, FAILED_OVER, capped, failed_over, holds};

/// What a history entry (and the event of the same transition) says happened.
pub(crate) mod reason {
    /// A domain answers from other than its first-choice pools.
    pub(crate) const FAILOVER: &str = "Failover";
    /// A domain answers from its first choice again.
    pub(crate) const FAILBACK: &str = "Failback";
    /// No pool of a domain is available: it answers the lowest-order pool whole.
    pub(crate) const FAIL_OPEN: &str = "FailOpen";
    /// No pool of a domain is available and it answers nothing.
    pub(crate) const NO_ANSWER: &str = "NoAnswer";
    /// A pool no longer meets its judgement.
    pub(crate) const POOL_UNAVAILABLE: &str = "PoolUnavailable";
    /// A pool meets its judgement again.
    pub(crate) const POOL_AVAILABLE: &str = "PoolAvailable";
    /// Addresses became unavailable.
    pub(crate) const ADDRESS_DOWN: &str = "AddressDown";
    /// Addresses became available again.
    pub(crate) const ADDRESS_UP: &str = "AddressUp";
    /// A `Sequential` pool answers another address.
    pub(crate) const ACTIVE_ADDRESS_CHANGED: &str = "ActiveAddressChanged";
}

/// `from`/`to` of an availability transition.
fn availability(available: bool) -> &'static str {
    if available {
        "Available"
    } else {
        "Unavailable"
    }
}

fn entry(now: &Time, reason: &str, from: &str, to: &str, message: String) -> HistoryEntry {
    HistoryEntry {
        time: now.clone(),
        reason: reason.to_string(),
        from: capped(from),
        to: capped(to),
        message: capped(message),
    }
}

fn condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// The addresses of one direction of flips, each with why it failed when it did: `192.0.2.1
/// (http:80: status 503)`.
fn address_list(addresses: &[&AddressStatus]) -> String {
    addresses
        .iter()
        .map(|a| {
            if a.available {
                return a.value.clone();
            }
            let errors: Vec<String> = a
                .tasks
                .iter()
                .filter_map(|t| {
                    let port = t.port.map(|p| format!(":{p}")).unwrap_or_default();
                    Some(format!("{}{port}: {}", t.template, t.last_error.as_ref()?))
                })
                .collect();
            if errors.is_empty() {
                a.value.clone()
            } else {
                format!("{} ({})", a.value, errors.join("; "))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The transitions of a pool from `old` to `new`, in the order they are listed (the pool's
/// own first, then what caused it). An object seen for the first time, or a pool whose health
/// was not known before (not accepted), has none.
pub(crate) fn pool_transitions(
    old: &AddressPoolStatus,
    new: &AddressPoolStatus,
    now: &Time,
) -> Vec<HistoryEntry> {
    let mut out = Vec::new();
    if let (Some(before), Some(after)) = (
        condition(&old.conditions, AVAILABLE),
        condition(&new.conditions, AVAILABLE),
    ) && before.status != after.status
    {
        let reason = if holds(after) {
            reason::POOL_AVAILABLE
        } else {
            reason::POOL_UNAVAILABLE
        };
        out.push(entry(
            now,
            reason,
            availability(holds(before)),
            availability(holds(after)),
            after.message.clone(),
        ));
    }
    if let (Some(before), Some(after)) = (&old.active_address, &new.active_address)
        && before != after
    {
        out.push(entry(
            now,
            reason::ACTIVE_ADDRESS_CHANGED,
            before,
            after,
            format!("the Sequential policy answers {after}"),
        ));
    }
    let flipped: Vec<&AddressStatus> = new
        .addresses
        .iter()
        .filter(|a| {
            old.addresses
                .iter()
                .any(|o| o.value == a.value && o.available != a.available)
        })
        .collect();
    for available in [false, true] {
        let these: Vec<&AddressStatus> = flipped
            .iter()
            .copied()
            .filter(|a| a.available == available)
            .collect();
        if these.is_empty() {
            continue;
        }
        let reason = if available {
            reason::ADDRESS_UP
        } else {
            reason::ADDRESS_DOWN
        };
        out.push(entry(
            now,
            reason,
            availability(!available),
            availability(available),
            address_list(&these),
        ));
    }
    out
}

/// `from`/`to` of a domain: the pools it answers from.
fn answering(pools: &[String]) -> String {
    if pools.is_empty() {
        "nothing".to_string()
    } else {
        pools.join(", ")
    }
}

/// The transition of a domain from `old` to `new`, if what it answers from changed for a
/// health reason: a failover, a failback, failing open or to nothing. A domain seen for the
/// first time, or one not published before or now, has none; neither has a change of the pools
/// answering that only its spec made (first choice before and after).
pub(crate) fn domain_transitions(
    old: &GtmAccessDomainStatus,
    new: &GtmAccessDomainStatus,
    now: &Time,
) -> Vec<HistoryEntry> {
    let (Some(before), Some(after)) = (
        condition(&old.conditions, FAILED_OVER),
        condition(&new.conditions, FAILED_OVER),
    ) else {
        return Vec::new();
    };
    if before.reason == after.reason && old.active_pools == new.active_pools {
        return Vec::new();
    }
    let reason = match after.reason.as_str() {
        failed_over::PRIMARY if holds(before) => reason::FAILBACK,
        failed_over::PRIMARY => return Vec::new(),
        failed_over::FAIL_OPEN => reason::FAIL_OPEN,
        failed_over::NO_POOL_AVAILABLE => reason::NO_ANSWER,
        _ => reason::FAILOVER,
    };
    vec![entry(
        now,
        reason,
        &answering(&old.active_pools),
        &answering(&new.active_pools),
        after.message.clone(),
    )]
}

/// Whether two entries tell the same transition, whenever seen.
fn same_transition(a: &HistoryEntry, b: &HistoryEntry) -> bool {
    (&a.reason, &a.from, &a.to, &a.message) == (&b.reason, &b.from, &b.to, &b.message)
}

/// The history after one step's `transitions` (in the order given) on top of `history`, newest
/// first: at most [`MAX_HISTORY`] entries, the oldest dropped. A step whose transitions are
/// exactly the newest entries already (whenever seen) is a replay of the last step and records
/// nothing: each transition reverses the one before it of the same thing, so a real step never
/// repeats the step just before it.
pub(crate) fn record(
    history: &[HistoryEntry],
    transitions: Vec<HistoryEntry>,
) -> Vec<HistoryEntry> {
    let replay = history.len() >= transitions.len()
        && transitions
            .iter()
            .zip(history)
            .all(|(t, h)| same_transition(t, h));
    if replay {
        return history.to_vec();
    }
    transitions
        .into_iter()
        .chain(history.iter().cloned())
        .take(MAX_HISTORY)
        .collect()
}

#[cfg(test)]
mod tests {
    use gtm_crds::pool::{HealthState, TaskStatus};
    use k8s_openapi::jiff::Timestamp;

    use super::*;
    use crate::conditions::{Cond, settle};

    fn t(s: i64) -> Time {
        Time(Timestamp::from_second(s).unwrap())
    }

    fn address(value: &str, available: bool, error: Option<&str>) -> AddressStatus {
        AddressStatus {
            value: value.into(),
            state: if available {
                HealthState::Up
            } else {
                HealthState::Down
            },
            available,
            source: None,
            since: None,
            tasks: vec![TaskStatus {
                template: "http".into(),
                port: Some(80),
                target: None,
                state: HealthState::Down,
                since: None,
                last_probe_time: None,
                latency_millis: None,
                last_error: error.map(str::to_string),
                locations_up: None,
                locations_down: None,
            }],
        }
    }

    fn pool(
        available: bool,
        addresses: Vec<AddressStatus>,
        active: Option<&str>,
    ) -> AddressPoolStatus {
        AddressPoolStatus {
            conditions: settle(
                &[],
                vec![Cond::new(
                    AVAILABLE,
                    available,
                    "Judgement",
                    format!("available: {available}"),
                )],
                None,
                &t(0),
            ),
            active_address: active.map(str::to_string),
            addresses,
            ..Default::default()
        }
    }

    fn domain(reason: &str, holds: bool, active: &[&str]) -> GtmAccessDomainStatus {
        GtmAccessDomainStatus {
            conditions: settle(
                &[],
                vec![Cond::new(
                    FAILED_OVER,
                    holds,
                    reason,
                    format!("{reason} now"),
                )],
                None,
                &t(0),
            ),
            active_pools: active.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn summary(entries: &[HistoryEntry]) -> Vec<(&str, &str, &str, &str)> {
        entries
            .iter()
            .map(|e| {
                (
                    e.reason.as_str(),
                    e.from.as_str(),
                    e.to.as_str(),
                    e.message.as_str(),
                )
            })
            .collect()
    }

    #[test]
    fn a_pool_records_itself_first_then_its_addresses_one_entry_per_direction() {
        let before = pool(
            true,
            vec![
                address("192.0.2.1", true, None),
                address("192.0.2.2", true, None),
                address("192.0.2.3", false, Some("refused")),
            ],
            Some("192.0.2.1"),
        );
        let after = pool(
            false,
            vec![
                address("192.0.2.1", false, Some("status 503")),
                address("192.0.2.2", false, None),
                address("192.0.2.3", true, Some("refused")),
                address("192.0.2.4", false, Some("new address")),
            ],
            Some("192.0.2.3"),
        );
        let entries = pool_transitions(&before, &after, &t(100));
        assert_eq!(
            summary(&entries),
            [
                (
                    "PoolUnavailable",
                    "Available",
                    "Unavailable",
                    "available: false"
                ),
                (
                    "ActiveAddressChanged",
                    "192.0.2.1",
                    "192.0.2.3",
                    "the Sequential policy answers 192.0.2.3"
                ),
                (
                    "AddressDown",
                    "Available",
                    "Unavailable",
                    "192.0.2.1 (http:80: status 503), 192.0.2.2"
                ),
                // An address that comes back is listed without its old error.
                ("AddressUp", "Unavailable", "Available", "192.0.2.3"),
            ]
        );
        assert!(entries.iter().all(|e| e.time == t(100)));
        // Back the other way: the pool comes back.
        let back = pool_transitions(&after, &before, &t(200));
        assert_eq!(back[0].reason, "PoolAvailable");
    }

    #[test]
    fn a_first_status_or_an_unchanged_one_records_nothing() {
        let s = pool(false, vec![address("192.0.2.1", false, Some("x"))], None);
        assert!(pool_transitions(&AddressPoolStatus::default(), &s, &t(1)).is_empty());
        assert!(pool_transitions(&s, &s, &t(1)).is_empty());
        let d = domain(failed_over::POOL_UNAVAILABLE, true, &["standby"]);
        assert!(domain_transitions(&GtmAccessDomainStatus::default(), &d, &t(1)).is_empty());
        assert!(domain_transitions(&d, &d, &t(1)).is_empty());
        // Unpublished now (no FailedOver condition): nothing either.
        assert!(domain_transitions(&d, &GtmAccessDomainStatus::default(), &t(1)).is_empty());
    }

    #[test]
    fn a_domain_records_failover_fail_open_no_answer_and_failback() {
        let primary = domain(failed_over::PRIMARY, false, &["primary"]);
        let standby = domain(failed_over::POOL_UNAVAILABLE, true, &["standby"]);
        let other = domain(failed_over::POOL_UNAVAILABLE, true, &["other"]);
        let open = domain(failed_over::FAIL_OPEN, true, &["primary"]);
        let nothing = domain(failed_over::NO_POOL_AVAILABLE, true, &[]);
        let step = |a, b| {
            let e = domain_transitions(a, b, &t(5));
            assert!(e.len() <= 1);
            e.first()
                .map(|e| (e.reason.clone(), e.from.clone(), e.to.clone()))
        };
        let s = |r: &str, f: &str, to: &str| Some((r.to_string(), f.to_string(), to.to_string()));
        assert_eq!(
            step(&primary, &standby),
            s("Failover", "primary", "standby")
        );
        assert_eq!(step(&standby, &other), s("Failover", "standby", "other"));
        assert_eq!(step(&standby, &open), s("FailOpen", "standby", "primary"));
        assert_eq!(step(&open, &nothing), s("NoAnswer", "primary", "nothing"));
        assert_eq!(
            step(&nothing, &primary),
            s("Failback", "nothing", "primary")
        );
        assert_eq!(
            domain_transitions(&primary, &standby, &t(5))[0].message,
            "PoolUnavailable now"
        );
        // First choice before and after: the spec changed, not the health.
        let edited = domain(failed_over::PRIMARY, false, &["primary", "second"]);
        assert_eq!(step(&primary, &edited), None);
    }

    fn e(time: i64, reason: &str) -> HistoryEntry {
        entry(&t(time), reason, "a", "b", String::new())
    }

    #[test]
    fn the_history_is_newest_first_and_bounded() {
        let mut history = Vec::new();
        for i in 0..(MAX_HISTORY as i64 + 5) {
            history = record(&history, vec![e(i, &format!("R{i}"))]);
        }
        assert_eq!(history.len(), MAX_HISTORY);
        assert_eq!(history[0].reason, format!("R{}", MAX_HISTORY + 4));
        assert_eq!(history[MAX_HISTORY - 1].reason, "R5");
        assert!(history.windows(2).all(|w| w[0].time.0 > w[1].time.0));
        // Several transitions of one step keep their order, on top.
        let step = record(&history, vec![e(100, "First"), e(100, "Second")]);
        assert_eq!(
            step.iter()
                .take(3)
                .map(|e| e.reason.as_str())
                .collect::<Vec<_>>(),
            ["First", "Second", &format!("R{}", MAX_HISTORY + 4)]
        );
        assert_eq!(step.len(), MAX_HISTORY);
        assert_eq!(record(&step, Vec::new()), step);
    }

    #[test]
    fn a_replayed_step_is_not_recorded_twice() {
        let history = record(
            &[e(1, "Old")],
            vec![e(10, "PoolUnavailable"), e(10, "AddressDown")],
        );
        // The same step seen again later (a status computed from an older one): left out.
        let replayed = record(
            &history,
            vec![e(12, "PoolUnavailable"), e(12, "AddressDown")],
        );
        assert_eq!(replayed, history);
        // The same transition again after another one is a new flap, and recorded, even
        // within the same second.
        let up = record(&history, vec![e(10, "PoolAvailable")]);
        let again = record(&up, vec![e(10, "PoolUnavailable")]);
        assert_eq!(
            again.iter().map(|e| e.reason.as_str()).collect::<Vec<_>>(),
            [
                "PoolUnavailable",
                "PoolAvailable",
                "PoolUnavailable",
                "AddressDown",
                "Old"
            ]
        );
    }
}
