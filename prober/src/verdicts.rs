//! A location's verdicts as `gtm-prober` keeps and publishes them: pure. The book follows the
//! tasks the prober runs and their states, and numbers each set that differs from the one
//! published, continuing after what the location published before a restart.
//!
//! A restarted location does not start its tasks from its old verdicts: it may have been down
//! for long, and its old verdicts may be wrong now. Its tasks start `Unknown`, so it abstains
//! from the vote until its thresholds decide, and the other locations (or, with none, the last
//! verdict) carry the tasks meanwhile.

use std::collections::BTreeMap;

use gtm_crds::location::Verdicts;
use gtm_crds::pool::HealthState;

/// The verdicts of one location.
#[derive(Clone, Debug)]
pub struct VerdictBook {
    location: String,
    states: BTreeMap<String, HealthState>,
    generation: u64,
    published: Option<Verdicts>,
}

impl VerdictBook {
    /// The book of `location`, resuming from the verdicts it published before, if any.
    pub fn new(location: &str, published: Option<Verdicts>) -> Self {
        Self {
            location: location.into(),
            states: BTreeMap::new(),
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
    }

    /// Takes a task's state after a probe; a task not followed is ignored (its report was
    /// queued before the task was removed).
    pub fn observe(&mut self, id: &str, state: HealthState) {
        if let Some(current) = self.states.get_mut(id) {
            *current = state;
        }
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
        let current = Verdicts::new(
            &self.location,
            self.generation + 1,
            self.states.iter().map(|(id, s)| (id.as_str(), *s)),
        );
        let unchanged = self
            .published
            .as_ref()
            .is_some_and(|p| p.up == current.up && p.down == current.down);
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

        book.observe("a", Up);
        book.observe("gone", Down);
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
        book.observe("a", Up);
        book.observe("b", Down);
        assert_eq!(book.next().unwrap().generation, 43);
    }
}
