//! The one publish step of both modes: what to write, decided without I/O ([`Publisher::plan`]),
//! then written in order to a [`Sink`] (the payload ConfigMaps in a cluster, files in local
//! mode) by [`Publisher::write`].
//!
//! The decision, in order:
//! 1. the drop guard admits the compiled config or holds the last published one
//!    ([`DropGuard::admit`]);
//! 2. the admitted config is numbered and written when it changed; one that breaks the contract
//!    is refused and the last published one keeps serving;
//! 3. the health snapshot follows, after the config (a DNS pod never holds health for a config
//!    it lacks). While the published config is not the compiled one (held or refused), the tasks
//!    and active members only the published config has keep their last published health
//!    ([`held_health`]). Its verdicts are numbered by the task list of the config the DNS pods
//!    will serve ([`gtm_crds::config::TaskList`]), beside the verdicts by task id;
//! 4. a payload whose stored copy someone altered ([`Sink::intact`]) is written again as it was.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use gtm_crds::config::{ActiveSelections, ContractError, GtmConfig, HealthSnapshot};
use gtm_crds::parts::Payload;

use crate::drop_guard::{DropGuard, DropGuardSettings, Hold, Release, held_health};
use crate::health::{TaskHealth, snapshot};
use crate::payloads::PayloadState;

/// Where payloads are written: the payload ConfigMaps, or files.
pub(crate) trait Sink {
    /// Why a write failed.
    type Error;

    /// Writes one payload whole, numbered `generation`.
    async fn write(
        &mut self,
        payload: Payload,
        text: &str,
        generation: u64,
    ) -> Result<(), Self::Error>;

    /// Whether the payload last written is still stored as written (nobody edited or deleted
    /// it since).
    fn intact(&mut self, payload: Payload) -> bool;
}

/// What a pass proposes to publish.
pub(crate) struct Proposal<'a> {
    /// The compiled config.
    pub(crate) compiled: &'a GtmConfig,
    /// The health view.
    pub(crate) tasks: &'a BTreeMap<String, TaskHealth>,
    /// The active members the evaluation chose.
    pub(crate) active: &'a ActiveSelections,
    /// The token a user gave to confirm a held drop, if any.
    pub(crate) confirmation: Option<&'a str>,
    /// Now, on the clock the guard's hold time is measured with.
    pub(crate) now: Instant,
    /// Now, in Unix seconds ([`unix_now`]): the SOA serial of a zone that changes.
    pub(crate) unix_time: u32,
}

/// The wall clock in Unix seconds, as SOA serials count it (32 bits last until 2106).
pub(crate) fn unix_now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

/// What [`Publisher::plan`] decided.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The writes, in order.
    pub(crate) writes: Writes,
    /// The hold, when the drop guard holds the compiled config.
    pub(crate) hold: Option<Hold>,
    /// Why the change held until now stopped being held, when it just did.
    pub(crate) released: Option<Release>,
    /// Why the compiled config was refused, when it breaks the contract.
    pub(crate) refused: Option<ContractError>,
}

/// The payloads to write, config first, and the active members they publish.
#[derive(Debug)]
pub(crate) struct Writes {
    payloads: Vec<(Payload, String, u64)>,
    active: ActiveSelections,
}

/// The publishing state of one operator: what is published, the drop guard, and the active
/// members non-preemptive levels keep.
#[derive(Debug)]
pub(crate) struct Publisher {
    payloads: PayloadState,
    guard: DropGuard,
    texts: HashMap<Payload, String>,
    active: ActiveSelections,
}

impl Publisher {
    /// Nothing published yet; the drop guard decides as `guard` says.
    pub(crate) fn new(guard: DropGuardSettings) -> Self {
        Self {
            payloads: PayloadState::default(),
            guard: DropGuard::new(guard),
            texts: HashMap::new(),
            active: ActiveSelections::default(),
        }
    }

    /// Starts from the payload texts found published (after a restart or a leader change):
    /// unchanged payloads are not rewritten, generations continue, non-preemptive choices are
    /// kept, and a drop held before is held anew.
    pub(crate) fn resume(&mut self, existing: HashMap<Payload, String>) {
        let config = existing
            .get(&Payload::Config)
            .and_then(|t| GtmConfig::from_json(t.as_bytes()).ok());
        let health = existing
            .get(&Payload::Health)
            .and_then(|t| HealthSnapshot::from_json(t.as_bytes()).ok());
        self.payloads = PayloadState::resume(config, health);
        self.active = self.payloads.last_active();
        self.texts = existing;
        self.guard.forget();
    }

    /// Sets when a change that drops most access domains is held (a hold in progress ends).
    pub(crate) fn set_drop_guard(&mut self, settings: DropGuardSettings) {
        self.guard = DropGuard::new(settings);
    }

    /// When the drop held now is due to be published.
    pub(crate) fn hold_deadline(&self) -> Option<Instant> {
        self.guard.deadline()
    }

    /// The active members last published, which the next evaluation starts from.
    pub(crate) fn active(&self) -> &ActiveSelections {
        &self.active
    }

    /// The SOA serial of each zone in the config last published.
    pub(crate) fn serials(&self) -> BTreeMap<String, u32> {
        self.payloads
            .last_config()
            .map(|c| c.serials.clone())
            .unwrap_or_default()
    }

    /// The health snapshot last published.
    pub(crate) fn last_health(&self) -> Option<&HealthSnapshot> {
        self.payloads.last_health()
    }

    /// The generation of the config last handed out to be written.
    pub(crate) fn config_generation(&self) -> u64 {
        self.payloads.generation(Payload::Config)
    }

    /// Decides what to write for `proposal`; `sink` only says which stored payloads are intact.
    pub(crate) fn plan(&mut self, proposal: &Proposal<'_>, sink: &mut impl Sink) -> Plan {
        let admitted = self.guard.admit(
            self.payloads.last_config(),
            proposal.compiled.clone(),
            proposal.confirmation,
            proposal.now,
        );
        let (config, refused) = match self
            .payloads
            .next_config(admitted.config, proposal.unix_time)
        {
            Ok(config) => (config, None),
            Err(e) => (None, Some(e)),
        };
        let mut health = snapshot(proposal.tasks, proposal.active, 0);
        if (admitted.hold.is_some() || refused.is_some())
            && let Some(serving) = self.payloads.last_config()
        {
            health = held_health(
                health,
                serving,
                |t| proposal.tasks.contains_key(t),
                self.payloads.last_health(),
            );
        }
        // Numbered by the task list of the config the DNS pods will serve with it, so that
        // they read 100 000 verdicts as as many bytes, not ids; the ids stay for readers of
        // schemas before 1.3 and for pods that hold another config.
        if let Some(list) = self.payloads.task_list_to_serve() {
            health = health.numbered_by(list);
        }
        let health = self.payloads.next_health(health);
        let payloads = [(Payload::Config, config), (Payload::Health, health)]
            .into_iter()
            .filter_map(|(payload, changed)| {
                let text = match changed {
                    Some(text) => text,
                    None if !sink.intact(payload) => self.texts.get(&payload)?.clone(),
                    None => return None,
                };
                Some((payload, text, self.payloads.generation(payload)))
            })
            .collect();
        Plan {
            writes: Writes {
                payloads,
                active: proposal.active.clone(),
            },
            hold: admitted.hold,
            released: admitted.released,
            refused,
        }
    }

    /// Writes `writes` in order, stopping at the first failure (the next pass writes it again);
    /// returns the payloads written.
    pub(crate) async fn write<S: Sink>(
        &mut self,
        writes: Writes,
        sink: &mut S,
    ) -> Result<Vec<Payload>, S::Error> {
        let mut written = Vec::new();
        for (payload, text, generation) in writes.payloads {
            if let Err(e) = sink.write(payload, &text, generation).await {
                self.payloads.failed(payload);
                return Err(e);
            }
            self.payloads.written(payload);
            self.texts.insert(payload, text);
            written.push(payload);
        }
        self.active = writes.active;
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use gtm_crds::config::TaskList;
    use gtm_crds::pool::HealthState;

    use super::*;

    /// Payloads kept in memory; a write fails while `fail` is set.
    #[derive(Default)]
    struct Memory {
        stored: HashMap<Payload, String>,
        fail: bool,
        altered: bool,
    }

    impl Sink for Memory {
        type Error = &'static str;

        async fn write(
            &mut self,
            payload: Payload,
            text: &str,
            _generation: u64,
        ) -> Result<(), Self::Error> {
            if self.fail {
                return Err("the store is down");
            }
            self.stored.insert(payload, text.to_string());
            Ok(())
        }

        fn intact(&mut self, _payload: Payload) -> bool {
            !self.altered
        }
    }

    const TASK: &str = "ns/t@192.0.2.1#80";

    /// A consistent config: the domains `ids`, all answered by one pool whose address has the
    /// health-check task [`TASK`].
    fn config(ids: &[&str]) -> GtmConfig {
        let mut c = GtmConfig::empty(vec!["gtm.example.com".into()]);
        c.pools.push(
            serde_json::from_value(serde_json::json!({
                "id": "ns/p", "poolType": "IPv4", "enabled": true, "policy": "RoundRobin",
                "healthJudgement": "AnyOk", "addresses": [{
                    "value": "192.0.2.1", "enabled": true, "mode": "Auto", "weight": 1,
                    "order": 1, "healthJudgement": "AnyOk", "tasks": [TASK]
                }]
            }))
            .unwrap(),
        );
        c.domains = ids
            .iter()
            .map(|id| {
                serde_json::from_value(serde_json::json!({
                    "id": id, "name": format!("{}.gtm.example.com", id.replace('/', "-")),
                    "recordType": "A", "ttl": 30, "policy": "RoundRobin",
                    "pools": [{"pool": "ns/p", "order": 1, "weight": 1}]
                }))
                .unwrap()
            })
            .collect();
        c
    }

    fn published(sink: &Memory) -> GtmConfig {
        GtmConfig::from_json(sink.stored[&Payload::Config].as_bytes()).unwrap()
    }

    /// Passes over a publisher with no health view and no confirmation.
    struct Passes {
        publisher: Publisher,
        sink: Memory,
    }

    impl Passes {
        fn new() -> Self {
            Self {
                publisher: Publisher::new(DropGuardSettings::default()),
                sink: Memory::default(),
            }
        }

        /// Plans and writes `compiled`; returns the hold and what was written.
        async fn run(
            &mut self,
            compiled: &GtmConfig,
        ) -> (Option<Hold>, Result<Vec<Payload>, &'static str>) {
            let tasks = BTreeMap::new();
            let active = ActiveSelections::default();
            let plan = self.publisher.plan(
                &Proposal {
                    compiled,
                    tasks: &tasks,
                    active: &active,
                    confirmation: None,
                    now: Instant::now(),
                    unix_time: 1_800_000_000,
                },
                &mut self.sink,
            );
            assert!(plan.refused.is_none());
            let written = self.publisher.write(plan.writes, &mut self.sink).await;
            (plan.hold, written)
        }
    }

    #[tokio::test]
    async fn config_then_health_and_only_what_changed() {
        let mut pass = Passes::new();
        let c = config(&["ns/a"]);
        let (hold, written) = pass.run(&c).await;
        assert_eq!(written, Ok(vec![Payload::Config, Payload::Health]));
        assert!(hold.is_none());
        let (_, written) = pass.run(&c).await;
        assert_eq!(written, Ok(vec![]));
        // Someone altered the stored payloads: written again as they were.
        pass.sink.altered = true;
        let before = pass.sink.stored.clone();
        let (_, written) = pass.run(&c).await;
        assert_eq!(written, Ok(vec![Payload::Config, Payload::Health]));
        assert_eq!(pass.sink.stored, before);
    }

    #[tokio::test]
    async fn health_is_numbered_by_the_task_list_of_the_config_published_with_it() {
        let mut pass = Passes::new();
        let one = config(&["ns/a"]);
        let mut two = one.clone();
        two.pools[0].addresses[0]
            .tasks
            .push("ns/u@192.0.2.1#81".into());
        // The list is kept per config: back to the first config, back to its list.
        for (compiled, tasks) in [(&one, 1), (&two, 2), (&one, 1)] {
            let (_, written) = pass.run(compiled).await;
            assert_eq!(written, Ok(vec![Payload::Config, Payload::Health]));
            let health =
                HealthSnapshot::from_json(pass.sink.stored[&Payload::Health].as_bytes()).unwrap();
            let numbered = health.numbered.expect("numbered verdicts");
            let list = TaskList::of(&published(&pass.sink)).into_owned();
            assert_eq!(numbered.task_list, list.digest());
            assert_eq!(numbered.verdicts.len(), tasks);
        }
    }

    #[tokio::test]
    async fn a_failed_config_write_does_not_turn_a_later_large_drop_into_a_first_publish() {
        let mut pass = Passes::new();
        pass.run(&config(&["ns/a", "ns/b", "ns/c"]))
            .await
            .1
            .unwrap();
        let first = published(&pass.sink);

        // A small change whose write fails: nothing new is published.
        pass.sink.fail = true;
        let (_, written) = pass.run(&config(&["ns/a", "ns/b", "ns/c", "ns/d"])).await;
        assert!(written.is_err());
        pass.sink.fail = false;

        // Then every domain goes: held against what serves, not published as a first config.
        let (hold, written) = pass.run(&config(&[])).await;
        let hold = hold.expect("the drop is held");
        assert_eq!((hold.dropped, hold.published), (3, 3));
        assert_eq!(
            written,
            Ok(vec![Payload::Config]),
            "the failed write is made good with what serves"
        );
        let now = published(&pass.sink);
        assert_eq!(now.domains, first.domains);
        assert_eq!(now.generation, 3, "numbered on after the failed write");
    }

    #[tokio::test]
    async fn a_refused_config_keeps_the_published_one_and_the_health_it_needs() {
        let mut publisher = Publisher::new(DropGuardSettings::default());
        let mut sink = Memory::default();
        let now = Instant::now();
        let good = config(&["ns/a"]);
        let tasks = BTreeMap::from([(TASK.to_string(), TaskHealth::new(HealthState::Down, None))]);
        let active = ActiveSelections::default();
        let proposal = |compiled, tasks| Proposal {
            compiled,
            tasks,
            active: &active,
            confirmation: None,
            now,
            unix_time: 1_800_000_000,
        };
        let plan = publisher.plan(&proposal(&good, &tasks), &mut sink);
        publisher.write(plan.writes, &mut sink).await.unwrap();
        let numbered_by_good = Some(TaskList::of(&good).number(|_| HealthState::Down));
        let health = HealthSnapshot::from_json(sink.stored[&Payload::Health].as_bytes()).unwrap();
        assert_eq!(
            health.numbered, numbered_by_good,
            "numbered by the config written"
        );

        // A config breaking the contract, and its task no longer probed.
        let mut bad = good.clone();
        bad.zones = vec!["Not.Canonical".into()];
        bad.pools[0].addresses[0]
            .tasks
            .push("ns/other@192.0.2.9#1".into());
        let none = BTreeMap::new();
        let plan = publisher.plan(&proposal(&bad, &none), &mut sink);
        assert!(plan.refused.is_some());
        assert!(plan.writes.payloads.is_empty());
        publisher.write(plan.writes, &mut sink).await.unwrap();
        let health = HealthSnapshot::from_json(sink.stored[&Payload::Health].as_bytes()).unwrap();
        assert_eq!(
            health.tasks.get(TASK),
            Some(&HealthState::Down),
            "the serving config's task keeps its verdict"
        );
        assert_eq!(
            health.numbered, numbered_by_good,
            "numbered by the serving config's task list, not the refused one's"
        );
    }
}
