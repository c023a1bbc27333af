//! Status conditions per Kubernetes conventions: `type`, `status`, `reason`, `message`,
//! `observedGeneration`, and a `lastTransitionTime` that changes only when the status flips.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

pub(crate) use gtm_crds::condition::{
    ACCEPTED, AVAILABLE, CHECKS_RUNNABLE, ConditionStatus, DEGRADED, DNSSEC_KEY_READY,
    ENDPOINTS_RESOLVED, FAILED_OVER, LOCATIONS_REPORTING, READY,
};

/// Reasons of the `FailedOver` condition of a domain: what it answers from.
pub(crate) mod failed_over {
    /// Answering from its first choice.
    pub(crate) const PRIMARY: &str = "Primary";
    /// Answering from other pools than its first choice.
    pub(crate) const POOL_UNAVAILABLE: &str = "PoolUnavailable";
    /// No pool is available: answering the lowest-order non-empty pool, all its addresses.
    pub(crate) const FAIL_OPEN: &str = "FailOpen";
    /// No pool is available and `whenAllUnavailable` is `NoAnswer`: answering nothing.
    pub(crate) const NO_POOL_AVAILABLE: &str = "NoPoolAvailable";
}

/// Most bytes of any message the operator writes for people: condition messages, status
/// fields such as a probe's last error, event notes, status table lines. Kubernetes allows
/// 32 KiB per condition message; a line a person reads needs far less, and an object must
/// never carry a dump of its own input.
pub(crate) const MAX_MESSAGE_BYTES: usize = 1024;

/// A message cut to [`MAX_MESSAGE_BYTES`] on a character boundary, ending in `…` when cut.
pub(crate) fn capped(message: impl Into<String>) -> String {
    const ELLIPSIS: &str = "…";
    let mut message = message.into();
    if message.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES - ELLIPSIS.len();
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str(ELLIPSIS);
    }
    message
}

/// A condition as computed, before times are settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Cond {
    /// Condition type.
    pub type_: &'static str,
    /// True or False.
    pub status: bool,
    /// CamelCase reason.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
}

impl Cond {
    /// A condition; the message is [`capped`].
    pub(crate) fn new(
        type_: &'static str,
        status: bool,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_,
            status,
            reason: reason.into(),
            message: capped(message),
        }
    }
}

/// Whether an API condition holds (its status is `True`).
pub(crate) fn holds(condition: &Condition) -> bool {
    ConditionStatus::parse(&condition.status) == ConditionStatus::True
}

/// Turns computed conditions into API conditions, keeping each previous `lastTransitionTime`
/// whose status did not change, and `now` for the others.
pub(crate) fn settle(
    previous: &[Condition],
    computed: Vec<Cond>,
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    computed
        .into_iter()
        .map(|c| {
            let status = ConditionStatus::from(c.status).as_str();
            let last_transition_time = previous
                .iter()
                .find(|p| p.type_ == c.type_ && p.status == status)
                .map_or_else(|| now.clone(), |p| p.last_transition_time.clone());
            Condition {
                type_: c.type_.to_string(),
                status: status.to_string(),
                reason: c.reason,
                message: c.message,
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect()
}

/// The conditions that changed status between two lists (type and new status), for events.
pub(crate) fn flips<'a>(previous: &[Condition], current: &'a [Condition]) -> Vec<&'a Condition> {
    current
        .iter()
        .filter(|c| {
            previous
                .iter()
                .find(|p| p.type_ == c.type_)
                .is_none_or(|p| p.status != c.status)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn t(s: i64) -> Time {
        Time(Timestamp::from_second(s).unwrap())
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        assert_eq!(capped("short"), "short");
        let exact = "x".repeat(MAX_MESSAGE_BYTES);
        assert_eq!(capped(exact.clone()), exact);
        // A 1 MB dump of multi-byte characters.
        let dump = "é".repeat(500_000);
        let c = Cond::new(READY, false, "Invalid", dump);
        assert!(c.message.len() <= MAX_MESSAGE_BYTES, "{}", c.message.len());
        assert!(c.message.len() > MAX_MESSAGE_BYTES - 8);
        assert!(c.message.starts_with("éé") && c.message.ends_with("é…"));
    }

    #[test]
    fn transition_time_moves_only_when_status_flips() {
        let first = settle(
            &[],
            vec![Cond::new(READY, true, "Published", "ok")],
            Some(1),
            &t(10),
        );
        assert_eq!(first[0].last_transition_time, t(10));
        assert_eq!(first[0].status, "True");
        assert_eq!(first[0].observed_generation, Some(1));

        let same = settle(
            &first,
            vec![Cond::new(READY, true, "Published", "new message")],
            Some(2),
            &t(20),
        );
        assert_eq!(same[0].last_transition_time, t(10));
        assert_eq!(same[0].message, "new message");
        assert_eq!(same[0].observed_generation, Some(2));

        let flipped = settle(
            &same,
            vec![Cond::new(READY, false, "NotAccepted", "no")],
            Some(2),
            &t(30),
        );
        assert_eq!(flipped[0].last_transition_time, t(30));
        assert_eq!(flips(&same, &flipped).len(), 1);
        assert!(flips(&first, &same).is_empty());
        assert_eq!(flips(&[], &first).len(), 1);
    }
}
