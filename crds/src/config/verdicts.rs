//! The health payload as the DNS pods read it on every verdict: the task ids borrowed from the
//! payload's bytes, in payload order, instead of a map of owned strings. At 100 000 tasks a
//! [`HealthSnapshot`] takes 100 000 allocations and as many tree inserts to build; this form
//! takes none beyond one list, so that a verdict reaches the answer in milliseconds.

use std::borrow::Cow;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::{
    ActiveSelections, ContractError, HealthSnapshot, SCHEMA_VERSION, SchemaVersion, check_version,
};
use crate::pool::HealthState;

/// A [`HealthSnapshot`] whose task ids borrow from the payload's bytes.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthVerdicts<'a> {
    /// Payload schema version.
    pub schema_version: SchemaVersion,
    /// Increases with every published change.
    pub generation: u64,
    /// Verdict per task id, in payload order; a task not listed is `Unknown`. Should an id be
    /// listed twice, the last verdict counts (as in [`HealthSnapshot::tasks`]).
    #[serde(default, borrow, deserialize_with = "task_list")]
    pub tasks: Vec<(Cow<'a, str>, HealthState)>,
    /// The member each `Sequential` level currently answers with, as the operator decided.
    #[serde(default)]
    pub active: ActiveSelections,
}

impl<'a> HealthVerdicts<'a> {
    /// Parses and version-checks a health payload, as [`HealthSnapshot::from_json`] does, in
    /// one pass over the bytes: the version alone is read (a second pass) only when the
    /// payload does not parse, so that an unknown major still gets its own error.
    pub fn from_json(bytes: &'a [u8]) -> Result<Self, ContractError> {
        match serde_json::from_slice::<Self>(bytes) {
            Ok(verdicts) if verdicts.schema_version.major == SCHEMA_VERSION.major => Ok(verdicts),
            Ok(verdicts) => Err(ContractError::UnsupportedVersion {
                found: verdicts.schema_version,
                supported_major: SCHEMA_VERSION.major,
            }),
            Err(error) => {
                check_version(bytes)?;
                Err(error.into())
            }
        }
    }

    /// The same verdicts borrowed from a snapshot.
    pub fn of(snapshot: &'a HealthSnapshot) -> Self {
        Self {
            schema_version: snapshot.schema_version,
            generation: snapshot.generation,
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

fn task_list<'de, D: Deserializer<'de>>(
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

    #[test]
    fn reads_what_a_snapshot_reads_borrowing_plain_ids() {
        let snapshot = HealthSnapshot {
            schema_version: SCHEMA_VERSION,
            generation: 7,
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
        };
        let json = serde_json::to_vec(&snapshot).unwrap();
        let read = HealthVerdicts::from_json(&json).unwrap();
        assert_eq!(read, HealthVerdicts::of(&snapshot));
        assert!(
            read.tasks
                .iter()
                .all(|(id, _)| matches!(id, Cow::Borrowed(_)))
        );
    }

    #[test]
    fn escaped_ids_are_unescaped_and_unknown_majors_and_bad_shapes_refused() {
        let read = HealthVerdicts::from_json(
            br#"{"schemaVersion":"1.9","generation":1,"tasks":{"ns/t@h\u0061#1":"Up"}}"#,
        )
        .unwrap();
        assert_eq!(read.tasks, [(Cow::Borrowed("ns/t@ha#1"), HealthState::Up)]);
        for bad in [
            &br#"{"schemaVersion":"2.0","generation":1}"#[..],
            br#"{"schemaVersion":"1.1","generation":1,"tasks":[1]}"#,
            br#"{"schemaVersion":"1.1","generation":1,"tasks":{"a":"Sideways"}}"#,
            br#"{"schemaVersion":"1.1""#,
        ] {
            assert!(HealthVerdicts::from_json(bad).is_err());
        }
    }
}
