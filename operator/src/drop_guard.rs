//! The guard against publishing a config that suddenly drops most access domains (every
//! manifest deleted, a directory emptied, CRs deleted by mistake): such a change would turn
//! every dropped name into NXDOMAIN at once. A change that drops more than a set share of the
//! published access domains is held, the last published config keeps serving, and the hold is
//! reported, until it has persisted for a set time or is confirmed with its token. Adding
//! domains is never held, and neither is a first publish (there is nothing to protect); after a
//! restart the config found published counts as published, so an operator that restarts on an
//! empty directory holds too.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

use gtm_crds::config::{GtmConfig, HealthSnapshot};

/// Where a confirmation is given in cluster mode: this annotation on the config ConfigMap, with
/// the hold's token as value.
pub(crate) const CONFIRM_ANNOTATION: &str = "gtm.kubegtm.io/confirm-drop";
/// Where a confirmation is given in local mode: this file in the manifest directory, holding
/// the hold's token.
pub(crate) const CONFIRM_FILE: &str = ".gtm-confirm-drop";

/// How the guard decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DropGuardSettings {
    /// A change dropping more than this percentage of the published access domains is held;
    /// 100 turns the guard off.
    pub max_drop_percent: u8,
    /// How long a held change must persist before it is published anyway.
    pub hold_for: Duration,
}

impl Default for DropGuardSettings {
    fn default() -> Self {
        Self {
            max_drop_percent: 50,
            hold_for: Duration::from_secs(300),
        }
    }
}

/// A change being held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Hold {
    /// Access domains the change would drop.
    pub dropped: usize,
    /// Access domains published now.
    pub published: usize,
    /// A few of the dropped domains, for the report.
    pub examples: Vec<String>,
    /// What confirms this very change (it differs for another set of dropped domains).
    pub token: String,
    /// Time left until it is published anyway.
    pub remaining: Duration,
}

impl Hold {
    /// The report line: what is held, until when, and how to confirm (`confirm_how` says where
    /// the token goes).
    pub(crate) fn message(&self, confirm_how: &str) -> String {
        crate::conditions::capped(format!(
            "publishing held: the change drops {} of {} published access domains ({}{}); the last published config keeps serving for {}s more unless confirmed with token {} ({confirm_how})",
            self.dropped,
            self.published,
            self.examples.join(", "),
            if self.dropped > self.examples.len() {
                ", ..."
            } else {
                ""
            },
            self.remaining.as_secs(),
            self.token
        ))
    }
}

impl Release {
    /// The report line for the end of `hold`.
    pub(crate) fn message(self, hold: &Hold) -> String {
        let change = format!(
            "the held change that drops {} of {} published access domains",
            hold.dropped, hold.published
        );
        crate::conditions::capped(match self {
            Release::Confirmed => {
                format!("publishing {change}: confirmed with token {}", hold.token)
            }
            Release::Expired => format!("publishing {change}: it persisted for the hold time"),
            Release::Withdrawn => format!(
                "hold lifted: {change} is no longer proposed; what is published now drops no more than the allowed share"
            ),
        })
    }
}

/// The guard's memory: the change held and since when.
#[derive(Debug)]
pub(crate) struct DropGuard {
    settings: DropGuardSettings,
    held: Option<(String, Instant)>,
}

/// What to publish.
#[derive(Debug)]
pub(crate) struct Admitted {
    /// The config to publish: the new one, or the last published one while held.
    pub config: GtmConfig,
    /// The hold, when the change is held.
    pub hold: Option<Hold>,
    /// Why the change held until now is no longer held, when it just stopped being held.
    pub released: Option<Release>,
}

/// Why a held change stopped being held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Release {
    /// Confirmed with its token: it is published.
    Confirmed,
    /// It persisted for the hold time: it is published.
    Expired,
    /// It is no longer proposed (the dropped domains came back, or too few are dropped now to
    /// be held): what is published is not that change.
    Withdrawn,
}

impl DropGuard {
    /// A guard deciding as `settings` say.
    pub(crate) fn new(settings: DropGuardSettings) -> Self {
        Self {
            settings,
            held: None,
        }
    }

    /// Decides whether `next` may replace `last` (the published config) at `now`;
    /// `confirmation` is the token a user gave, if any.
    pub(crate) fn admit(
        &mut self,
        last: Option<&GtmConfig>,
        next: GtmConfig,
        confirmation: Option<&str>,
        now: Instant,
    ) -> Admitted {
        let was_held = self.held.take();
        let publish = |config, released| Admitted {
            config,
            hold: None,
            released,
        };
        let withdrawn = was_held.as_ref().map(|_| Release::Withdrawn);
        let Some(last) = last else {
            return publish(next, withdrawn);
        };
        let kept: std::collections::HashSet<&str> =
            next.domains.iter().map(|n| n.id.as_str()).collect();
        let mut dropped: Vec<&str> = last
            .domains
            .iter()
            .map(|d| d.id.as_str())
            .filter(|id| !kept.contains(id))
            .collect();
        let published = last.domains.len();
        let share_ok =
            dropped.len() * 100 <= usize::from(self.settings.max_drop_percent) * published;
        if share_ok || self.settings.max_drop_percent >= 100 {
            return publish(next, withdrawn);
        }
        dropped.sort_unstable();
        let token = token_of(&dropped);
        let since = match &was_held {
            Some((held, since)) if *held == token => *since,
            _ => now,
        };
        let waited = now.saturating_duration_since(since);
        let confirmed = confirmation.map(str::trim) == Some(token.as_str());
        if confirmed || waited >= self.settings.hold_for {
            tracing::warn!(
                dropped = dropped.len(),
                published,
                confirmed,
                "publishing a change that drops most access domains"
            );
            // Reported as a release only when it was held (with no hold time, or confirmed on
            // sight by a token left from before, it never was).
            let release = if confirmed {
                Release::Confirmed
            } else {
                Release::Expired
            };
            return publish(next, was_held.map(|_| release));
        }
        self.held = Some((token.clone(), since));
        Admitted {
            config: last.clone(),
            hold: Some(Hold {
                dropped: dropped.len(),
                published,
                examples: dropped.iter().take(3).map(|d| d.to_string()).collect(),
                token,
                remaining: self.settings.hold_for - waited,
            }),
            released: None,
        }
    }

    /// Forgets the change held (a new leader starts its hold anew).
    pub(crate) fn forget(&mut self) {
        self.held = None;
    }

    /// When the change held now is published unless something else happens first.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.held
            .as_ref()
            .map(|(_, since)| *since + self.settings.hold_for)
    }
}

/// The health payload to publish while a change is held. The held config keeps serving, but
/// the health view follows the compiled one: the tasks only the held config uses are no longer
/// probed (their pools or templates are gone), and the active members of the domains and pools
/// only it has are no longer chosen. A DNS pod reads a missing task as `Unknown`, which counts
/// as healthy, and a missing active member as the first one; so those tasks keep their last
/// published verdicts, and those levels their last published members, until the hold ends.
/// `probed` says whether a task is in the health view (its verdict there stands, `Unknown`
/// included).
pub(crate) fn held_health(
    mut health: HealthSnapshot,
    held: &GtmConfig,
    probed: impl Fn(&str) -> bool,
    last: Option<&HealthSnapshot>,
) -> HealthSnapshot {
    let Some(last) = last else {
        return health;
    };
    let tasks = held
        .pools
        .iter()
        .flat_map(|p| &p.addresses)
        .flat_map(|a| &a.tasks);
    for task in tasks.filter(|t| !probed(t)) {
        if let Some(state) = last.tasks.get(task) {
            health.tasks.insert(task.clone(), *state);
        }
    }
    for d in &held.domains {
        if let Some(pool) = last.active.domains.get(&d.id) {
            health
                .active
                .domains
                .entry(d.id.clone())
                .or_insert_with(|| pool.clone());
        }
    }
    for p in &held.pools {
        if let Some(address) = last.active.pools.get(&p.id) {
            health
                .active
                .pools
                .entry(p.id.clone())
                .or_insert_with(|| address.clone());
        }
    }
    health
}

/// A short token naming one set of dropped domains.
fn token_of(dropped: &[&str]) -> String {
    let mut h = DefaultHasher::new();
    dropped.hash(&mut h);
    format!("{:08x}", h.finish() as u32)
}

#[cfg(test)]
mod tests {
    use gtm_crds::config::DomainConfig;

    use super::*;

    fn config(ids: &[&str]) -> GtmConfig {
        let mut c = GtmConfig::empty(vec!["gtm.example.com".into()]);
        let template: DomainConfig = serde_json::from_value(serde_json::json!({
            "id": "x", "name": "x.gtm.example.com", "recordType": "A", "ttl": 30,
            "policy": "RoundRobin", "pools": []
        }))
        .unwrap();
        c.domains = ids
            .iter()
            .map(|id| DomainConfig {
                id: id.to_string(),
                name: format!("{}.gtm.example.com", id.replace('/', "-")),
                ..template.clone()
            })
            .collect();
        c
    }

    const FIVE_MIN: Duration = Duration::from_secs(300);

    #[test]
    fn a_large_drop_is_held_until_it_persists() {
        let mut g = DropGuard::new(DropGuardSettings::default());
        let t0 = Instant::now();
        let last = config(&["ns/a", "ns/b", "ns/c", "ns/d"]);
        let empty = config(&[]);
        let a = g.admit(Some(&last), empty.clone(), None, t0);
        assert_eq!(a.config, last, "the last config keeps serving");
        let hold = a.hold.expect("held");
        assert_eq!(
            (hold.dropped, hold.published, hold.remaining),
            (4, 4, FIVE_MIN)
        );
        assert!(
            hold.message("echo")
                .contains("drops 4 of 4 published access domains (ns/a, ns/b, ns/c, ...)")
        );

        let later = g.admit(
            Some(&last),
            empty.clone(),
            None,
            t0 + Duration::from_secs(299),
        );
        assert_eq!(later.hold.unwrap().remaining, Duration::from_secs(1));
        assert_eq!(
            g.deadline(),
            Some(t0 + FIVE_MIN),
            "counted from the first sight"
        );
        let released = g.admit(Some(&last), empty.clone(), None, t0 + FIVE_MIN);
        assert_eq!(
            (released.config, released.hold, released.released),
            (empty, None, Some(Release::Expired))
        );
        assert_eq!(g.deadline(), None);
    }

    #[test]
    fn a_confirmed_drop_is_published_and_a_stale_token_confirms_nothing() {
        let mut g = DropGuard::new(DropGuardSettings::default());
        let t0 = Instant::now();
        let last = config(&["ns/a", "ns/b", "ns/c"]);
        let one_left = config(&["ns/a"]);
        let token = g
            .admit(Some(&last), one_left.clone(), None, t0)
            .hold
            .unwrap()
            .token;
        // Another change (all three gone) has another token: the first one does not confirm it.
        let all_gone = g.admit(Some(&last), config(&[]), Some(&token), t0);
        assert!(all_gone.hold.is_some());
        let confirmed = g.admit(
            Some(&last),
            one_left.clone(),
            Some(&format!("{token}\n")),
            t0,
        );
        assert_eq!(
            (confirmed.config, confirmed.hold, confirmed.released),
            (one_left, None, Some(Release::Confirmed))
        );
    }

    #[test]
    fn small_drops_additions_first_publishes_and_a_disabled_guard_pass() {
        let mut g = DropGuard::new(DropGuardSettings::default());
        let now = Instant::now();
        let four = config(&["ns/a", "ns/b", "ns/c", "ns/d"]);
        assert!(
            g.admit(Some(&four), config(&["ns/a", "ns/b"]), None, now)
                .hold
                .is_none(),
            "50 % is allowed"
        );
        assert!(
            g.admit(Some(&four), config(&["ns/a"]), None, now)
                .hold
                .is_some(),
            "75 % is not"
        );
        assert!(
            g.admit(Some(&config(&[])), four.clone(), None, now)
                .hold
                .is_none()
        );
        assert!(g.admit(None, config(&[]), None, now).hold.is_none());
        let mut off = DropGuard::new(DropGuardSettings {
            max_drop_percent: 100,
            hold_for: FIVE_MIN,
        });
        assert!(
            off.admit(Some(&four), config(&[]), None, now)
                .hold
                .is_none()
        );
    }

    #[test]
    fn held_health_keeps_what_only_the_held_config_needs() {
        use gtm_crds::pool::HealthState::{Down, Up};

        let mut held = config(&["ns/gone", "ns/kept"]);
        held.pools = vec![
            serde_json::from_value(serde_json::json!({
                "id": "ns/p", "poolType": "IPv4", "enabled": true, "policy": "Sequential",
                "healthJudgement": "AnyOk", "addresses": [{
                    "value": "192.0.2.1", "enabled": true, "mode": "Auto", "weight": 1,
                    "order": 1, "healthJudgement": "AnyOk",
                    "tasks": ["ns/t@192.0.2.1#80", "ns/probed@192.0.2.1#80"]
                }]
            }))
            .unwrap(),
        ];
        let mut last = HealthSnapshot::empty();
        last.tasks.insert("ns/t@192.0.2.1#80".into(), Down);
        last.tasks.insert("ns/probed@192.0.2.1#80".into(), Down);
        last.tasks.insert("ns/other@192.0.2.9".into(), Down);
        last.active
            .domains
            .insert("ns/gone".into(), "ns/standby".into());
        last.active
            .domains
            .insert("ns/kept".into(), "ns/standby".into());
        last.active.pools.insert("ns/p".into(), "192.0.2.1".into());
        // The health view: one task still probed (now Up; its verdict stands), the kept
        // domain's member chosen anew.
        let mut now = HealthSnapshot::empty();
        now.tasks.insert("ns/probed@192.0.2.1#80".into(), Up);
        now.active
            .domains
            .insert("ns/kept".into(), "ns/primary".into());

        let h = held_health(
            now.clone(),
            &held,
            |t| t == "ns/probed@192.0.2.1#80",
            Some(&last),
        );
        assert_eq!(h.tasks["ns/t@192.0.2.1#80"], Down, "not probed: kept");
        assert_eq!(h.tasks["ns/probed@192.0.2.1#80"], Up, "probed: as probed");
        assert!(
            !h.tasks.contains_key("ns/other@192.0.2.9"),
            "not in the held config"
        );
        assert_eq!(h.active.domains["ns/gone"], "ns/standby");
        assert_eq!(h.active.domains["ns/kept"], "ns/primary");
        assert_eq!(h.active.pools["ns/p"], "192.0.2.1");
        assert_eq!(held_health(now.clone(), &held, |_| false, None), now);
    }
}
