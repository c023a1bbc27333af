//! Verdicts by task number (schema 1.3): one character per task, in the order of the config's
//! task list, tied to that list by a digest.
//!
//! At 100 000 addresses the verdicts by task id are 3.7 MB, and every verdict change made each
//! DNS pod read, parse and merge 100 000 ids. Numbered, the same verdicts are 100 000 bytes that
//! a DNS pod compares with what it serves byte by byte, without looking an id up. The digest
//! says which task list the numbers refer to: a DNS pod applies numbered verdicts only to a
//! config whose task list has the same digest, and reads the ids otherwise (a config and its
//! health payload travel apart, so a pod may hold the one before the other).

use std::borrow::{Borrow, Cow};
use std::collections::HashSet;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::{ContractError, GtmConfig, PoolConfig};
use crate::pool::HealthState;

/// The verdicts of a health payload by task number. Read from a payload, the fields are owned
/// (100 kB at 100 000 tasks: one copy, against the 100 000 ids they spare).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NumberedVerdicts<'a> {
    /// The digest of the task list the verdicts are numbered by ([`TaskList::digest`]).
    pub task_list: Cow<'a, str>,
    /// One character per task, in task list order: `U` up, `D` down, `-` unknown.
    pub verdicts: Cow<'a, str>,
}

impl NumberedVerdicts<'_> {
    /// The verdicts, checked to be one known character for each of `tasks` tasks.
    pub fn states(&self, tasks: usize) -> Result<Vec<HealthState>, ContractError> {
        let bytes = self.verdicts.as_bytes();
        if bytes.len() != tasks {
            return Err(ContractError::Inconsistent(format!(
                "{} numbered verdicts for a task list of {tasks} tasks",
                bytes.len()
            )));
        }
        bytes
            .iter()
            .map(|&b| match b {
                b'U' => Ok(HealthState::Up),
                b'D' => Ok(HealthState::Down),
                b'-' => Ok(HealthState::Unknown),
                other => Err(ContractError::Inconsistent(format!(
                    "numbered verdict {:?} is none of U, D, -",
                    char::from(other)
                ))),
            })
            .collect()
    }

    /// An owned copy.
    pub fn into_owned(self) -> NumberedVerdicts<'static> {
        NumberedVerdicts {
            task_list: Cow::Owned(self.task_list.into_owned()),
            verdicts: Cow::Owned(self.verdicts.into_owned()),
        }
    }
}

/// The tasks of a config, numbered: in the order they first appear in its pools' addresses'
/// task lists, each once. The ids are borrowed from the config; [`Self::into_owned`] keeps
/// them beyond it (the operator numbers every health payload by the list of the config it
/// serves, and computes the list once per config).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskList<'c> {
    ids: Vec<Cow<'c, str>>,
    digest: String,
}

impl<'c> TaskList<'c> {
    /// The task list of `config`.
    pub fn of<P: Borrow<PoolConfig>>(config: &'c GtmConfig<P>) -> Self {
        let mut seen = HashSet::new();
        let ids: Vec<Cow<'c, str>> = config
            .pools
            .iter()
            .flat_map(|p| &p.borrow().addresses)
            .flat_map(|a| &a.tasks)
            .map(String::as_str)
            .filter(|id| seen.insert(*id))
            .map(Cow::Borrowed)
            .collect();
        let mut hasher = Sha256::new();
        for id in &ids {
            hasher.update((id.len() as u64).to_le_bytes());
            hasher.update(id.as_bytes());
        }
        let mut digest = String::with_capacity(64);
        for byte in hasher.finalize() {
            let _ = write!(digest, "{byte:02x}");
        }
        Self { ids, digest }
    }

    /// The task ids; a task's number is its position.
    pub fn ids(&self) -> &[Cow<'c, str>] {
        &self.ids
    }

    /// The same list, its ids owned.
    pub fn into_owned(self) -> TaskList<'static> {
        TaskList {
            ids: self
                .ids
                .into_iter()
                .map(|id| Cow::Owned(id.into_owned()))
                .collect(),
            digest: self.digest,
        }
    }

    /// SHA-256 of the ids in order, each preceded by its length in bytes (eight bytes, little
    /// endian), as lower-case hex.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The verdicts `verdict` gives the tasks, numbered by this list.
    pub fn number(&self, verdict: impl Fn(&str) -> HealthState) -> NumberedVerdicts<'static> {
        let verdicts = self
            .ids
            .iter()
            .map(|id| match verdict(id) {
                HealthState::Up => 'U',
                HealthState::Down => 'D',
                HealthState::Unknown => '-',
            })
            .collect();
        NumberedVerdicts {
            task_list: Cow::Owned(self.digest.clone()),
            verdicts: Cow::Owned(verdicts),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::sample;

    fn two_addresses_sharing_a_task() -> GtmConfig {
        let mut config = sample();
        let mut second = config.pools[0].addresses[0].clone();
        second.value = "192.0.2.11".into();
        second.tasks.insert(0, "prod/icmp@192.0.2.11".into());
        config.pools[0].addresses.push(second);
        config
    }

    #[test]
    fn tasks_are_numbered_in_order_of_first_appearance_and_round_trip() {
        let config = two_addresses_sharing_a_task();
        let list = TaskList::of(&config);
        assert_eq!(
            list.ids(),
            ["prod/http@192.0.2.10#80", "prod/icmp@192.0.2.11"]
        );
        let numbered = list.number(|id| {
            if id.contains("icmp") {
                HealthState::Down
            } else {
                HealthState::Up
            }
        });
        assert_eq!(numbered.verdicts, "UD");
        assert_eq!(numbered.task_list, list.digest());
        assert_eq!(
            numbered.states(2).unwrap(),
            [HealthState::Up, HealthState::Down]
        );
        assert_eq!(list.number(|_| HealthState::Unknown).verdicts, "--");
        let owned: TaskList<'static> = list.clone().into_owned();
        assert_eq!(owned, list);
        assert!(owned.ids().iter().all(|id| matches!(id, Cow::Owned(_))));
    }

    #[test]
    fn the_digest_changes_with_the_ids_and_their_order_only() {
        let config = two_addresses_sharing_a_task();
        let digest = TaskList::of(&config).digest().to_owned();
        assert_eq!(digest.len(), 64);
        let mut renamed = config.clone();
        renamed.pools[0].addresses[1].value = "192.0.2.12".into();
        renamed.generation += 1;
        assert_eq!(TaskList::of(&renamed).digest(), digest, "not the tasks");
        let mut reordered = config.clone();
        reordered.pools[0].addresses.reverse();
        assert_ne!(TaskList::of(&reordered).digest(), digest);
        let mut joined = config;
        // "a\nb" as one id must not read as the ids "a" and "b".
        joined.pools[0].addresses[1].tasks = vec![];
        joined.pools[0].addresses[0].tasks =
            vec!["prod/http@192.0.2.10#80\nprod/icmp@192.0.2.11".into()];
        assert_ne!(TaskList::of(&joined).digest(), digest);
    }

    #[test]
    fn verdicts_of_another_length_or_unknown_characters_are_refused() {
        let numbered = |verdicts: &'static str| NumberedVerdicts {
            task_list: "x".into(),
            verdicts: verdicts.into(),
        };
        for (verdicts, tasks) in [("UD", 3), ("UDU", 2), ("UxD", 3), ("ud-", 3), ("", 1)] {
            assert!(
                matches!(
                    numbered(verdicts).states(tasks),
                    Err(ContractError::Inconsistent(_))
                ),
                "{verdicts:?} for {tasks}"
            );
        }
        assert_eq!(numbered("").states(0).unwrap(), []);
    }
}
