//! The identity of one health-check task: a template probed against a target on a port. It
//! travels as text, `namespace/template@target#port` (`#port` absent for checks without a
//! port, ICMP), in the config payload's address task lists, the health payload's verdicts and
//! the prober's reports; [`TaskId`] builds and reads that text, so both directions stay one.

use std::fmt;
use std::str::FromStr;

/// One health-check task. `Display` gives the id as it travels; `FromStr` reads it back.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId {
    /// Namespace of the `HealthCheckTemplate`.
    pub namespace: String,
    /// Name of the `HealthCheckTemplate`.
    pub template: String,
    /// The address probed: an IP address or a host name.
    pub target: String,
    /// The port probed; `None` for checks without one (ICMP).
    pub port: Option<u16>,
}

impl TaskId {
    /// The task probing `target` (on `port`) with the template `namespace/template`.
    pub fn new(namespace: &str, template: &str, target: &str, port: Option<u16>) -> Self {
        Self {
            namespace: namespace.into(),
            template: template.into(),
            target: target.into(),
            port,
        }
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}@{}", self.namespace, self.template, self.target)?;
        match self.port {
            Some(port) => write!(f, "#{port}"),
            None => Ok(()),
        }
    }
}

/// Text that is not a task id.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a task id (namespace/template@target or namespace/template@target#port)")]
pub struct NotATaskId(pub String);

impl FromStr for TaskId {
    type Err = NotATaskId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || NotATaskId(s.into());
        // Object names and namespaces hold neither '@' nor '#'; an IPv6 target holds no '#'.
        let (template_id, rest) = s.split_once('@').ok_or_else(bad)?;
        let (namespace, template) = template_id.split_once('/').ok_or_else(bad)?;
        let (target, port) = match rest.rsplit_once('#') {
            Some((target, port)) => (target, Some(port.parse().map_err(|_| bad())?)),
            None => (rest, None),
        };
        if [namespace, template, target].iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        Ok(Self::new(namespace, template, target, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_travel_as_before_and_read_back() {
        for (id, text) in [
            (
                TaskId::new("prod", "http", "127.0.0.1", Some(8080)),
                "prod/http@127.0.0.1#8080",
            ),
            (
                TaskId::new("prod", "icmp", "a.example.com", None),
                "prod/icmp@a.example.com",
            ),
            (
                TaskId::new("default", "tcp", "2001:db8::1", Some(53)),
                "default/tcp@2001:db8::1#53",
            ),
        ] {
            assert_eq!(id.to_string(), text);
            assert_eq!(text.parse::<TaskId>(), Ok(id));
        }
    }

    #[test]
    fn other_text_is_refused() {
        for text in [
            "",
            "a",
            "prod/http",
            "http@192.0.2.1",
            "prod/http@",
            "prod/http@192.0.2.1#x",
            "prod/http@192.0.2.1#70000",
        ] {
            assert_eq!(
                text.parse::<TaskId>(),
                Err(NotATaskId(text.into())),
                "{text}"
            );
        }
    }
}
