//! A location's verdicts as `gtm-prober` keeps and publishes them: pure. The book follows the
//! tasks the prober runs and their states, and numbers each set that differs from the one
//! published, continuing after what the location published before a restart.
//!
//! A restarted location does not start its tasks from its old verdicts: it may have been down
//! for long, and its old verdicts may be wrong now. Its tasks start `Unknown`, so it abstains
//! from the vote until its thresholds decide, and the other locations (or, with none, the last
//! verdict) carry the tasks meanwhile.

use std::collections::BTreeMap;

use std::time::Duration;

use gtm_crds::latency::{quantised_millis, worth_reporting};
use gtm_crds::location::Verdicts;
use gtm_crds::pool::HealthState;

/// The verdicts of one location.
#[derive(Clone, Debug)]
pub struct VerdictBook {
    location: String,
    states: BTreeMap<String, HealthState>,
    /// The latency to report per task (ms): changed only when a probe measures a real move
    /// ([`worth_reporting`]), so that a wobble does not rewrite the verdicts.
    latency: BTreeMap<String, u32>,
    generation: u64,
    published: Option<Verdicts>,
}

impl VerdictBook {
    /// The book of `location`, resuming from the verdicts it published before, if any.
    pub fn new(location: &str, published: Option<Verdicts>) -> Self {
        Self {
            location: location.into(),
            states: BTreeMap::new(),
            latency: published
                .as_ref()
                .map(|p| p.latency_millis.clone())
                .unwrap_or_default(),
            generation: published.as_ref().map_or(0, |v| v.generation),
            published,
        }
    }

    /// Makes `tasks` (id and current state) the tasks followed: the others' verdicts go.
    pub fn follow<'a>(&mut self, tasks: impl IntoIterator<Item = (&'a str, HealthState)>) {
        self.states = tasks
            .into_iter()
            .map(|(id, state)| (id.to_string(), state))
            .collect();
        let states = &self.states;
        self.latency.retain(|id, _| states.contains_key(id));
    }

    /// Takes a task's state after a probe, and the latency of its last successful probe; a
    /// task not followed is ignored (its report was queued before the task was removed).
    /// Returns whether the latency to report changed.
    pub fn observe(&mut self, id: &str, state: HealthState, latency: Option<Duration>) -> bool {
        let Some(current) = self.states.get_mut(id) else {
            return false;
        };
        *current = state;
        let Some(measured) = latency.map(quantised_millis) else {
            return false;
        };
        let reported = self.latency.get(id).copied();
        if !worth_reporting(reported, measured) {
            return false;
        }
        self.latency.insert(id.to_string(), measured);
        true
    }

    /// How many followed tasks are in each state: (up, down, unknown).
    pub fn counts(&self) -> (usize, usize, usize) {
        self.states
            .values()
            .fold((0, 0, 0), |(up, down, unknown), state| match state {
                HealthState::Up => (up + 1, down, unknown),
                HealthState::Down => (up, down + 1, unknown),
                HealthState::Unknown => (up, down, unknown + 1),
            })
    }

    /// The verdicts to publish, numbered one above the last, when they differ from the ones
    /// published; `None` when they do not.
    pub fn next(&self) -> Option<Verdicts> {
        let mut current = Verdicts::new(
            &self.location,
            self.generation + 1,
            self.states.iter().map(|(id, s)| (id.as_str(), *s)),
        );
        current.latency_millis = current
            .up
            .iter()
            .filter_map(|id| Some((id.clone(), *self.latency.get(id)?)))
            .collect();
        let unchanged = self.published.as_ref().is_some_and(|p| {
            p.up == current.up
                && p.down == current.down
                && p.latency_millis == current.latency_millis
        });
        (!unchanged).then_some(current)
    }

    /// Records that `verdicts` (from [`Self::next`]) were published whole.
    pub fn published(&mut self, verdicts: Verdicts) {
        self.generation = verdicts.generation;
        self.published = Some(verdicts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HealthState::{Down, Unknown, Up};

    #[test]
    fn verdicts_are_numbered_and_published_only_when_they_change() {
        let mut book = VerdictBook::new("eu", None);
        book.follow([("a", Unknown), ("b", Unknown)]);
        let first = book.next().expect("nothing published yet");
        assert_eq!((first.generation, first.up.len()), (1, 0));
        book.published(first);
        assert_eq!(book.next(), None, "nothing changed");

        book.observe("a", Up, None);
        book.observe("gone", Down, None);
        let second = book.next().unwrap();
        assert_eq!(
            (second.generation, second.up.clone()),
            (2, vec!["a".into()])
        );
        book.published(second);
        assert_eq!(book.counts(), (1, 0, 1));

        // A removed task's verdict goes.
        book.follow([("b", Unknown)]);
        assert_eq!(book.next().unwrap().up, Vec::<String>::new());
    }

    #[test]
    fn a_restart_numbers_on_and_abstains_until_its_tasks_decide() {
        let before = Verdicts::new("eu", 41, [("a", Up), ("b", Down)]);
        let mut book = VerdictBook::new("eu", Some(before));
        book.follow([("a", Unknown), ("b", Unknown)]);
        let first = book.next().expect("the old verdicts are withdrawn");
        assert_eq!(first.generation, 42);
        assert!(first.up.is_empty() && first.down.is_empty());
        book.published(first);
        book.observe("a", Up, None);
        book.observe("b", Down, None);
        assert_eq!(book.next().unwrap().generation, 43);
    }

    #[test]
    fn latency_is_reported_for_up_tasks_and_only_when_it_really_moves() {
        let ms = Duration::from_millis;
        let mut book = VerdictBook::new("eu", None);
        book.follow([("a", Unknown), ("b", Unknown)]);
        assert!(book.observe("a", Up, Some(ms(40))));
        assert!(book.observe("b", Down, Some(ms(9))));
        let first = book.next().unwrap();
        assert_eq!(
            first.latency_millis,
            BTreeMap::from([("a".to_string(), 40)]),
            "a Down task's latency is not reported"
        );
        book.published(first);
        assert!(!book.observe("a", Up, Some(ms(43))), "7 %: noise");
        assert_eq!(book.next(), None, "nothing to write");
        assert!(book.observe("a", Up, Some(ms(60))));
        assert_eq!(book.next().unwrap().latency_millis["a"], 60);
    }
}
