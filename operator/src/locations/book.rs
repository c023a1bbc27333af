//! The remote probe locations the operator knows (every `gtm-prober --location NAME` that
//! reports), their freshness and their verdicts: pure bookkeeping, fed by the report files
//! (local mode) or ConfigMaps (cluster mode).
//!
//! Freshness is judged on the operator's clock: a location is fresh while its last heartbeat
//! *change* was seen less than the stale bound ago. Only when the operator first sees a
//! heartbeat (at its start, or a new location) does it take the time the heartbeat carries (the
//! prober's clock, never later than now), so that a location that died before the operator
//! started is stale at once rather than for one more bound. Clocks need only agree within the
//! bound for that first judgement.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use gtm_crds::location::{Heartbeat, Verdicts};
use gtm_crds::pool::HealthState;

/// What the operator knows of one remote location.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct RemoteLocation {
    /// Its labels, from its last heartbeat.
    pub labels: BTreeMap<String, String>,
    /// The time its last heartbeat carries (its clock).
    pub observed: Option<SystemTime>,
    /// When the operator saw its heartbeat change last (the operator's clock).
    pub heard: Option<SystemTime>,
    /// Its heartbeat interval.
    pub interval: Duration,
    /// Its verdicts by task id.
    pub verdicts: HashMap<String, HealthState>,
    /// The latency it measures to its `Up` tasks, milliseconds by task id.
    pub latency: HashMap<String, u32>,
    /// The generation of its verdicts.
    pub generation: u64,
    /// Whether it was fresh at the last [`LocationBook::refresh`].
    pub fresh: bool,
}

impl RemoteLocation {
    /// How long ago its heartbeat changed, at `now`.
    pub(crate) fn silent_for(&self, now: SystemTime) -> Option<Duration> {
        self.heard
            .map(|h| now.duration_since(h).unwrap_or(Duration::ZERO))
    }
}

/// A location that turned fresh or stale.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FreshnessChange {
    /// The location.
    pub location: String,
    /// Whether it is fresh now.
    pub fresh: bool,
    /// For a location turned stale: how long its heartbeat has not changed.
    pub silent_for: Option<Duration>,
}

/// The remote locations, by name.
#[derive(Clone, Debug)]
pub(crate) struct LocationBook {
    stale_after: Duration,
    locations: BTreeMap<String, RemoteLocation>,
}

impl LocationBook {
    /// No location yet; a location is stale after `stale_after` without a heartbeat.
    pub(crate) fn new(stale_after: Duration) -> Self {
        Self {
            stale_after,
            locations: BTreeMap::new(),
        }
    }

    /// The stale bound.
    pub(crate) fn stale_after(&self) -> Duration {
        self.stale_after
    }

    /// Takes a location's heartbeat as read at `now`; returns whether anything changed.
    pub(crate) fn heartbeat(&mut self, heartbeat: &Heartbeat, now: SystemTime) -> bool {
        let observed = SystemTime::from(heartbeat.observed_time);
        let location = self
            .locations
            .entry(heartbeat.location.clone())
            .or_default();
        if location.observed == Some(observed) && location.labels == heartbeat.labels {
            return false;
        }
        location.heard = Some(match location.observed {
            None => observed.min(now),
            Some(_) => now,
        });
        location.observed = Some(observed);
        location.labels.clone_from(&heartbeat.labels);
        location.interval = Duration::from_secs(heartbeat.interval_seconds.into());
        true
    }

    /// Takes a location's verdicts; returns whether they changed.
    pub(crate) fn verdicts(&mut self, verdicts: &Verdicts) -> bool {
        let new = !self.locations.contains_key(&verdicts.location);
        let location = self.locations.entry(verdicts.location.clone()).or_default();
        let states: HashMap<String, HealthState> = verdicts
            .states()
            .map(|(id, state)| (id.to_string(), state))
            .collect();
        let latency: HashMap<String, u32> = verdicts
            .latency_millis
            .iter()
            .map(|(id, ms)| (id.clone(), *ms))
            .collect();
        if !new && location.verdicts == states && location.latency == latency {
            return false;
        }
        location.verdicts = states;
        location.latency = latency;
        location.generation = verdicts.generation;
        true
    }

    /// Forgets the locations `keep` refuses (their reports are gone); returns whether any went.
    pub(crate) fn retain(&mut self, keep: impl Fn(&str) -> bool) -> bool {
        let before = self.locations.len();
        self.locations.retain(|name, _| keep(name));
        self.locations.len() != before
    }

    /// Whether a location's heartbeat changed within the stale bound before `now`.
    pub(crate) fn is_fresh(&self, name: &str, now: SystemTime) -> bool {
        self.locations
            .get(name)
            .is_some_and(|l| self.fresh_at(l, now))
    }

    fn fresh_at(&self, location: &RemoteLocation, now: SystemTime) -> bool {
        location
            .silent_for(now)
            .is_some_and(|silent| silent <= self.stale_after)
    }

    /// Judges every location's freshness at `now`; returns those whose freshness changed
    /// since the last call (a new location counts as stale before).
    pub(crate) fn refresh(&mut self, now: SystemTime) -> Vec<FreshnessChange> {
        let stale_after = self.stale_after;
        self.locations
            .iter_mut()
            .filter_map(|(name, location)| {
                let silent_for = location.silent_for(now);
                let fresh = silent_for.is_some_and(|s| s <= stale_after);
                if fresh == location.fresh {
                    return None;
                }
                location.fresh = fresh;
                Some(FreshnessChange {
                    location: name.clone(),
                    fresh,
                    silent_for: (!fresh).then_some(silent_for).flatten(),
                })
            })
            .collect()
    }

    /// How long after `now` the next fresh location turns stale, if one will.
    pub(crate) fn next_expiry(&self, now: SystemTime) -> Option<Duration> {
        self.locations
            .values()
            .filter_map(|l| l.silent_for(now))
            .filter(|silent| *silent <= self.stale_after)
            .map(|silent| self.stale_after - silent + Duration::from_millis(1))
            .min()
    }

    /// A location's verdict of a task, if it has one.
    pub(crate) fn verdict(&self, name: &str, task: &str) -> Option<HealthState> {
        self.locations.get(name)?.verdicts.get(task).copied()
    }

    /// The latency a location measures to a task, in milliseconds, if it reports one.
    pub(crate) fn latency(&self, name: &str, task: &str) -> Option<u32> {
        self.locations.get(name)?.latency.get(task).copied()
    }

    /// Every location, by name.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &RemoteLocation)> {
        self.locations.iter().map(|(n, l)| (n.as_str(), l))
    }
}

#[cfg(test)]
mod tests {
    use gtm_crds::config::SCHEMA_VERSION;

    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + secs)
    }

    fn heartbeat(location: &str, observed: SystemTime) -> Heartbeat {
        Heartbeat {
            schema_version: SCHEMA_VERSION,
            location: location.into(),
            labels: BTreeMap::from([("region".into(), "eu".into())]),
            observed_time: observed.try_into().unwrap(),
            interval_seconds: 10,
        }
    }

    const BOUND: Duration = Duration::from_secs(30);

    #[test]
    fn a_location_is_fresh_while_its_heartbeat_changes_and_stale_after_the_bound() {
        let mut book = LocationBook::new(BOUND);
        assert!(book.heartbeat(&heartbeat("eu", at(0)), at(0)));
        assert!(
            !book.heartbeat(&heartbeat("eu", at(0)), at(5)),
            "the same heartbeat"
        );
        assert_eq!(
            book.refresh(at(5)),
            [FreshnessChange {
                location: "eu".into(),
                fresh: true,
                silent_for: None
            }]
        );
        assert_eq!(book.next_expiry(at(5)), Some(Duration::from_millis(25_001)));
        assert!(book.is_fresh("eu", at(30)));
        assert!(!book.is_fresh("eu", at(31)));
        assert_eq!(book.refresh(at(20)), []);
        let stale = book.refresh(at(31));
        assert_eq!(stale[0].silent_for, Some(Duration::from_secs(31)));
        assert!(!stale[0].fresh);
        assert_eq!(book.next_expiry(at(31)), None);

        // It comes back: the next heartbeat is heard on the operator's clock, whatever it says.
        book.heartbeat(&heartbeat("eu", at(3)), at(40));
        assert!(book.is_fresh("eu", at(70)));
        assert!(book.refresh(at(41))[0].fresh);
    }

    #[test]
    fn a_first_heartbeat_counts_from_the_time_it_carries() {
        let mut book = LocationBook::new(BOUND);
        // Written an hour before the operator started: stale at once.
        book.heartbeat(&heartbeat("dead", at(0)), at(3600));
        assert!(!book.is_fresh("dead", at(3600)));
        // A prober clock ahead of the operator's counts from now.
        book.heartbeat(&heartbeat("ahead", at(4000)), at(3600));
        assert!(book.is_fresh("ahead", at(3630)));
        assert!(!book.is_fresh("ahead", at(3631)));
        assert!(!book.is_fresh("unknown", at(3600)));
    }

    #[test]
    fn verdicts_change_only_when_they_differ_and_locations_can_be_forgotten() {
        let mut book = LocationBook::new(BOUND);
        let v = Verdicts::new("eu", 2, [("a", HealthState::Down)]);
        assert!(book.verdicts(&v));
        assert!(!book.verdicts(&v));
        assert_eq!(book.verdict("eu", "a"), Some(HealthState::Down));
        assert_eq!(book.verdict("eu", "b"), None);
        assert!(
            !book.is_fresh("eu", at(0)),
            "verdicts without a heartbeat are never fresh"
        );
        assert!(book.retain(|name| name != "eu"));
        assert_eq!(book.iter().count(), 0);
    }
}
