//! The health payload as the DNS pods read it on every verdict. With verdicts by task number
//! for the task list the pod serves ([`NumberedVerdicts`], schema 1.3), the ids are not read at
//! all; otherwise the task ids are borrowed from the payload's bytes, in payload order, instead
//! of a map of owned strings. At 100 000 tasks a [`HealthSnapshot`] takes 100 000 allocations
//! and as many tree inserts to build; this form takes none beyond one list.

use std::borrow::Cow;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::{
    ActiveSelections, ContractError, HealthSnapshot, NumberedVerdicts, SCHEMA_VERSION,
    SchemaVersion, check_version,
};
use crate::pool::HealthState;

/// A [`HealthSnapshot`] as a DNS pod applies it: verdicts by number, or by ids borrowed from
/// the payload's bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthVerdicts<'a> {
    /// Payload schema version.
    pub schema_version: SchemaVersion,
    /// Increases with every published change.
    pub generation: u64,
    /// The verdicts by task number. From [`Self::from_json`], only those numbered by the task
    /// list the reader serves, and then [`Self::tasks`] is empty.
    pub numbered: Option<NumberedVerdicts<'a>>,
    /// Verdict per task id, in payload order; a task not listed is `Unknown`. Should an id be
    /// listed twice, the last verdict counts (as in [`HealthSnapshot::tasks`]).
    pub tasks: Vec<(Cow<'a, str>, HealthState)>,
    /// The member each `Sequential` level currently answers with, as the operator decided.
    pub active: ActiveSelections,
}

/// The payload as it travels, with the ids left unread.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire<'a> {
    schema_version: SchemaVersion,
    generation: u64,
    #[serde(default)]
    numbered: Option<NumberedVerdicts<'a>>,
    #[serde(default, borrow)]
    tasks: Option<&'a RawValue>,
    #[serde(default)]
    active: ActiveSelections,
}

impl<'a> HealthVerdicts<'a> {
    /// Parses and version-checks a health payload, as [`HealthSnapshot::from_json`] does, for a
    /// reader serving a config whose task list has the digest `task_list` ([`super::TaskList`];
    /// `None`: no config yet). When the payload's numbered verdicts are for that task list, the
    /// ids are checked to be JSON and not read further; otherwise they are read and the
    /// numbered verdicts dropped. One pass over the bytes, and one more over the ids when they
    /// are read: the version alone is read (another pass) only when the payload does not parse,
    /// so that an unknown major still gets its own error.
    pub fn from_json(bytes: &'a [u8], task_list: Option<&str>) -> Result<Self, ContractError> {
        let wire = match serde_json::from_slice::<Wire<'a>>(bytes) {
            Ok(wire) if wire.schema_version.major == SCHEMA_VERSION.major => wire,
            Ok(wire) => {
                return Err(ContractError::UnsupportedVersion {
                    found: wire.schema_version,
                    supported_major: SCHEMA_VERSION.major,
                });
            }
            Err(error) => {
                check_version(bytes)?;
                return Err(error.into());
            }
        };
        let numbered = wire
            .numbered
            .filter(|n| task_list == Some(n.task_list.as_ref()));
        let tasks = match (&numbered, wire.tasks) {
            (None, Some(ids)) => {
                let mut ids = serde_json::Deserializer::from_str(ids.get());
                let tasks = read_ids(&mut ids)?;
                ids.end()?;
                tasks
            }
            _ => Vec::new(),
        };
        Ok(Self {
            schema_version: wire.schema_version,
            generation: wire.generation,
            numbered,
            tasks,
            active: wire.active,
        })
    }

    /// The same verdicts borrowed from a snapshot (both forms, as it has them).
    pub fn of(snapshot: &'a HealthSnapshot) -> Self {
        Self {
            schema_version: snapshot.schema_version,
            generation: snapshot.generation,
            numbered: snapshot.numbered.clone(),
            tasks: snapshot
                .tasks
                .iter()
                .map(|(id, state)| (Cow::Borrowed(id.as_str()), *state))
                .collect(),
            active: snapshot.active.clone(),
        }
    }
}

/// A task id that borrows from the input when it holds no escapes.
#[derive(Deserialize)]
struct TaskId<'a>(#[serde(borrow)] Cow<'a, str>);

fn read_ids<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<(Cow<'de, str>, HealthState)>, D::Error> {
    struct List;
    impl<'de> Visitor<'de> for List {
        type Value = Vec<(Cow<'de, str>, HealthState)>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of task ids to verdicts")
        }

        fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
            let mut tasks = Vec::with_capacity(map.size_hint().unwrap_or(0));
            while let Some((TaskId(id), state)) = map.next_entry::<TaskId<'de>, HealthState>()? {
                tasks.push((id, state));
            }
            Ok(tasks)
        }
    }
    d.deserialize_map(List)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::TaskList;
    use crate::config::tests::sample;

    fn snapshot() -> HealthSnapshot {
        HealthSnapshot {
            schema_version: SCHEMA_VERSION,
            generation: 7,
            numbered: None,
            tasks: BTreeMap::from([
                ("ns/tcp@10.0.0.1#80".into(), HealthState::Down),
                ("ns/tcp@10.0.0.2#80".into(), HealthState::Up),
            ]),
            active: ActiveSelections {
                domains: BTreeMap::from([("ns/d".into(), "ns/p".into())]),
                pools: BTreeMap::new(),
                latency: BTreeMap::from([(
                    "ns/l".into(),
                    BTreeMap::from([("eu".into(), vec!["ns/p".into(), "ns/q".into()])]),
                )]),
            },
        }
    }

    #[test]
    fn reads_what_a_snapshot_reads_borrowing_plain_ids() {
        let snapshot = snapshot();
        let json = serde_json::to_vec(&snapshot).unwrap();
        let read = HealthVerdicts::from_json(&json, None).unwrap();
        assert_eq!(read, HealthVerdicts::of(&snapshot));
        assert!(
            read.tasks
                .iter()
                .all(|(id, _)| matches!(id, Cow::Borrowed(_)))
        );
    }

    #[test]
    fn numbered_verdicts_are_read_for_their_task_list_only_and_the_ids_otherwise() {
        let config = sample();
        let list = TaskList::of(&config);
        let snapshot = snapshot().numbered_by(&list);
        let json = serde_json::to_vec(&snapshot).unwrap();

        let matching = HealthVerdicts::from_json(&json, Some(list.digest())).unwrap();
        assert_eq!(matching.numbered, snapshot.numbered);
        assert!(matching.tasks.is_empty(), "the ids are not read");
        assert_eq!(matching.active, snapshot.active);

        for other in [None, Some("0".repeat(64).as_str())] {
            let read = HealthVerdicts::from_json(&json, other).unwrap();
            assert_eq!(read.numbered, None, "never applied to another task list");
            assert_eq!(read.tasks, HealthVerdicts::of(&snapshot).tasks);
        }
    }

    #[test]
    fn escaped_ids_are_unescaped_and_unknown_majors_and_bad_shapes_refused() {
        let read = HealthVerdicts::from_json(
            br#"{"schemaVersion":"1.9","generation":1,"tasks":{"ns/t@h\u0061#1":"Up"}}"#,
            None,
        )
        .unwrap();
        assert_eq!(read.tasks, [(Cow::Borrowed("ns/t@ha#1"), HealthState::Up)]);
        for bad in [
            &br#"{"schemaVersion":"2.0","generation":1}"#[..],
            br#"{"schemaVersion":"1.1","generation":1,"tasks":[1]}"#,
            br#"{"schemaVersion":"1.1","generation":1,"tasks":{"a":"Sideways"}}"#,
            br#"{"schemaVersion":"1.1","generation":1,"tasks":{"a":"Up"#,
            br#"{"schemaVersion":"1.3","generation":1,"numbered":{"taskList":"x"}}"#,
            br#"{"schemaVersion":"1.1""#,
        ] {
            assert!(HealthVerdicts::from_json(bad, None).is_err());
            assert!(HealthVerdicts::from_json(bad, Some("x")).is_err());
        }
    }
}
