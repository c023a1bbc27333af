//! CNAME loops between access domains. A domain with Domain pools answers its name with a
//! CNAME to one of their addresses; when such a chain leads back to the name (directly, or
//! through other access domains), resolvers chase it until they give up (SERVFAIL). Domains are
//! added oldest first, and the one that would close a loop is refused, so the older ones keep
//! serving.

use std::collections::HashMap;

use gtm_crds::RecordType;

/// The query types a CNAME chain is chased for: a chain only loops within one type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Query {
    A,
    Aaaa,
}

fn queries(record_type: RecordType) -> &'static [Query] {
    match record_type {
        RecordType::A => &[Query::A],
        RecordType::AAAA => &[Query::Aaaa],
        // A CNAME owns its name: it answers queries of every type.
        RecordType::CNAME => &[Query::A, Query::Aaaa],
    }
}

/// The CNAME edges of the domains accepted so far: (name, query type) to target names.
#[derive(Debug, Default)]
pub(super) struct CnameGraph {
    edges: HashMap<(String, Query), Vec<String>>,
}

impl CnameGraph {
    /// The loop that answering `name` (of `record_type`) with CNAMEs to `targets` would close,
    /// as the chain of names from `name` back to itself; `None` when there is none.
    pub(super) fn loop_through(
        &self,
        name: &str,
        record_type: RecordType,
        targets: &[&str],
    ) -> Option<Vec<String>> {
        queries(record_type)
            .iter()
            .find_map(|q| self.chain(name, *q, targets))
    }

    /// Records the CNAME edges of an accepted domain.
    pub(super) fn add(&mut self, name: &str, record_type: RecordType, targets: &[&str]) {
        for q in queries(record_type) {
            self.edges
                .entry((name.to_string(), *q))
                .or_default()
                .extend(targets.iter().map(|t| t.to_string()));
        }
    }

    /// The chain from `name` through one of `targets` back to `name`, following edges of one
    /// query type (a search that visits each name once, without recursion).
    fn chain<'a>(&'a self, name: &'a str, q: Query, targets: &[&'a str]) -> Option<Vec<String>> {
        let mut came_from: HashMap<&'a str, &'a str> = HashMap::new();
        let mut stack = Vec::new();
        for t in targets {
            if !came_from.contains_key(t) {
                came_from.insert(t, name);
                stack.push(*t);
            }
        }
        while let Some(at) = stack.pop() {
            if at == name {
                let mut path = vec![name.to_string()];
                let mut step = came_from[at];
                while step != name {
                    path.push(step.to_string());
                    step = came_from[step];
                }
                path.push(name.to_string());
                path.reverse();
                return Some(path);
            }
            for next in self.edges.get(&(at.to_string(), q)).into_iter().flatten() {
                if !came_from.contains_key(next.as_str()) {
                    came_from.insert(next, at);
                    stack.push(next);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loops_are_found_per_query_type_and_shown_as_a_chain() {
        let mut g = CnameGraph::default();
        assert_eq!(
            g.loop_through("a", RecordType::A, &["a"]),
            Some(vec!["a".to_string(), "a".to_string()])
        );
        g.add("a", RecordType::A, &["b", "x"]);
        g.add("b", RecordType::CNAME, &["c"]);
        assert_eq!(
            g.loop_through("c", RecordType::A, &["y", "a"]),
            Some(
                vec!["c", "a", "b", "c"]
                    .into_iter()
                    .map(String::from)
                    .collect()
            )
        );
        // An AAAA chain from c does not pass through the A-only domain a.
        assert_eq!(g.loop_through("c", RecordType::AAAA, &["a"]), None);
        assert_eq!(g.loop_through("c", RecordType::A, &["x"]), None);
    }
}
