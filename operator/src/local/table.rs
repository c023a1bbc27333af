//! The status table local mode prints: one line per object with its conditions and its last
//! transition, one line per address with its health, and the problems that belong to no object.

use std::collections::BTreeMap;
use std::fmt::Write;

use gtm_crds::manifest::Kind;
use gtm_crds::pool::HealthState;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use crate::compile::Rejection;
use crate::conditions::{
    ACCEPTED, AVAILABLE, ConditionStatus, DNSSEC_KEY_READY, FAILED_OVER, LOCATIONS_REPORTING,
    READY, capped, holds,
};
use crate::inventory::ObjectKey;
use crate::status::ObjectStatus;

fn cond<'a>(conds: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conds.iter().find(|c| c.type_ == type_)
}

fn state(s: HealthState) -> &'static str {
    match s {
        HealthState::Unknown => "Unknown",
        HealthState::Up => "Up",
        HealthState::Down => "Down",
    }
}

/// Renders the table.
pub(super) fn render(
    statuses: &BTreeMap<ObjectKey, ObjectStatus>,
    invalid: &BTreeMap<ObjectKey, Rejection>,
    problems: &[String],
    config_generation: u64,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "kube-gtm local mode, config generation {config_generation}"
    );
    let _ = writeln!(
        out,
        "{:<20} {:<32} {:<9} {:<6} DETAIL",
        "KIND", "NAME", "ACCEPTED", "READY"
    );
    let mut rows: Vec<(&ObjectKey, Option<&ObjectStatus>, Option<&Rejection>)> = statuses
        .iter()
        .map(|(k, s)| (k, Some(s), None))
        .chain(invalid.iter().map(|(k, r)| (k, None, Some(r))))
        .collect();
    rows.sort_by_key(|(k, _, _)| (k.kind, k.namespace.as_str(), k.name.as_str()));
    for (key, status, invalid) in rows {
        let name = key.id();
        let kind = key.kind.as_str();
        let Some(status) = status else {
            let r = invalid.expect("a row has a status or a rejection");
            let _ = writeln!(
                out,
                "{kind:<20} {name:<32} {:<9} {:<6} {}: {}",
                ConditionStatus::False.as_str(),
                ConditionStatus::False.as_str(),
                r.reason,
                r.message
            );
            continue;
        };
        let conds = status.conditions();
        let flag = |t: &str| cond(conds, t).map_or("-", |c| c.status.as_str());
        let accepted = cond(conds, ACCEPTED);
        let ready = cond(conds, READY);
        let detail = match (accepted, status) {
            (Some(a), _) if !holds(a) => format!("{}: {}", a.reason, a.message),
            (_, ObjectStatus::Domain(d)) => {
                let fo = cond(conds, FAILED_OVER);
                format!(
                    "answering from {}{}",
                    if d.active_pools.is_empty() {
                        "nothing".to_string()
                    } else {
                        d.active_pools.join(", ")
                    },
                    fo.filter(|c| holds(c))
                        .map(|c| format!(" (failed over: {})", c.reason))
                        .unwrap_or_default()
                )
            }
            (_, ObjectStatus::Pool(p)) => format!(
                "{}/{} available{}",
                p.available_addresses.unwrap_or(0),
                p.total_addresses.unwrap_or(0),
                cond(conds, AVAILABLE)
                    .filter(|c| !holds(c))
                    .map(|c| format!(", pool unavailable ({})", c.reason))
                    .unwrap_or_default()
            ),
            (_, ObjectStatus::Template(t)) => {
                let used_by = format!("used by {} addresses", t.used_by.unwrap_or(0));
                match cond(conds, LOCATIONS_REPORTING) {
                    Some(c) => format!("{used_by}; {}", c.message),
                    None => used_by,
                }
            }
            (_, ObjectStatus::Zone(z)) => format!(
                "{} record sets{}{}",
                z.records.unwrap_or(0),
                z.serial
                    .map(|s| format!(", serial {s}"))
                    .unwrap_or_default(),
                match (&z.dnssec, cond(conds, DNSSEC_KEY_READY)) {
                    (Some(d), _) => format!(", signed; parent needs {}", d.ds),
                    (None, Some(c)) => format!(", DNSSEC key {}: {}", c.reason, c.message),
                    (None, None) => String::new(),
                }
            ),
        };
        let detail = match ready {
            Some(r) if !holds(r) && accepted.is_some_and(holds) => {
                format!("{detail}; not ready: {}", r.message)
            }
            _ => detail,
        };
        let _ = writeln!(
            out,
            "{kind:<20} {name:<32} {:<9} {:<6} {detail}",
            flag(ACCEPTED),
            flag(READY)
        );
        let history = match status {
            ObjectStatus::Domain(d) => d.history.as_slice(),
            ObjectStatus::Pool(p) => p.history.as_slice(),
            ObjectStatus::Template(_) | ObjectStatus::Zone(_) => &[],
        };
        if let Some(last) = history.first() {
            let _ = writeln!(
                out,
                "    last transition {}: {} {} -> {}{}",
                last.time.0,
                last.reason,
                last.from,
                last.to,
                if last.message.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", last.message)
                }
            );
        }
        if let (Kind::AddressPool, ObjectStatus::Pool(p)) = (key.kind, status) {
            for a in &p.addresses {
                let tasks: Vec<String> = a
                    .tasks
                    .iter()
                    .map(|t| {
                        let mut s = format!(
                            "{}{} {}",
                            t.template,
                            t.port.map(|p| format!(":{p}")).unwrap_or_default(),
                            state(t.state)
                        );
                        if let Some(ms) = t.latency_millis {
                            let _ = write!(s, " {ms}ms");
                        }
                        let (up, down) =
                            (t.locations_up.unwrap_or(0), t.locations_down.unwrap_or(0));
                        if up + down > 1 {
                            let _ = write!(s, " [locations: {up} up, {down} down]");
                        }
                        if let Some(e) = &t.last_error {
                            let _ = write!(s, " ({e})");
                        }
                        s
                    })
                    .collect();
                let _ = writeln!(
                    out,
                    "    {:<40} {:<8} {:<12} {}",
                    a.value,
                    state(a.state),
                    if a.available {
                        "available"
                    } else {
                        "unavailable"
                    },
                    tasks.join(", ")
                );
            }
        }
    }
    for p in problems {
        let _ = writeln!(out, "problem: {}", capped(p.as_str()));
    }
    out
}
