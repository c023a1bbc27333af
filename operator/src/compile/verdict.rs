//! What a compile concludes about each object: accepted or not (with a precise reason), and
//! whether it made it into the published config.

use std::fmt;

/// Why an object was left out of the published config. The name is the condition `reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The manifest breaks the CRD schema (local mode; in a cluster the API server refuses it).
    Invalid,
    /// A referenced `AddressPool` does not exist in the object's namespace.
    PoolNotFound,
    /// A referenced `AddressPool` exists but was not accepted itself.
    PoolNotAccepted,
    /// A referenced `HealthCheckTemplate` does not exist in the object's namespace.
    TemplateNotFound,
    /// An address is not of its pool's type, is listed twice, or is not a unicast address
    /// (unspecified, broadcast, multicast).
    InvalidAddress,
    /// A probe target override (`probeTarget`, a check's `target`) is neither an IP address nor
    /// a host name.
    InvalidProbeTarget,
    /// A health-check task names no port and its protocol has no default (TCP).
    PortRequired,
    /// A pool's type cannot serve the domain's record type.
    PoolTypeMismatch,
    /// A `RoundRobin` domain mixes IP and Domain pools, which cannot form one answer.
    MixedPoolTypes,
    /// The domain lies outside every zone the DNS pods serve.
    ZoneNotServed,
    /// The domain would answer a CNAME at a zone apex, where SOA and NS must live.
    CnameAtApex,
    /// An older object already claims this name (and record type, or a CNAME at the name).
    Conflict,
    /// The domain's CNAMEs (its Domain pool addresses) lead back to its own name.
    CnameLoop,
    /// A zone's record or name server cannot be served as declared (outside the zone, in a
    /// more specific served zone, declared twice, or repeating a name server's glue).
    InvalidRecord,
}

impl RejectReason {
    /// The condition reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invalid => "Invalid",
            Self::PoolNotFound => "PoolNotFound",
            Self::PoolNotAccepted => "PoolNotAccepted",
            Self::TemplateNotFound => "TemplateNotFound",
            Self::InvalidAddress => "InvalidAddress",
            Self::InvalidProbeTarget => "InvalidProbeTarget",
            Self::PortRequired => "PortRequired",
            Self::PoolTypeMismatch => "PoolTypeMismatch",
            Self::MixedPoolTypes => "MixedPoolTypes",
            Self::ZoneNotServed => "ZoneNotServed",
            Self::CnameAtApex => "CnameAtApex",
            Self::Conflict => "Conflict",
            Self::CnameLoop => "CnameLoop",
            Self::InvalidRecord => "InvalidRecord",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejection: reason and a message that says exactly what to fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The condition reason.
    pub reason: RejectReason,
    /// The condition message.
    pub message: String,
}

impl Rejection {
    /// A rejection; the message is [`capped`](crate::conditions::capped).
    pub fn new(reason: RejectReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: crate::conditions::capped(message),
        }
    }
}

/// Whether an accepted object is in the published config, and if not, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Publication {
    /// In the published config (templates: in use or ready to be).
    Published,
    /// Accepted but switched off with `enabled: false` (domains).
    Disabled,
    /// Accepted but no published access domain uses it (pools).
    Unreferenced,
    /// Not accepted, so not published.
    NotAccepted,
}

impl Publication {
    /// The `Ready` condition reason.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Published => "Published",
            Self::Disabled => "Disabled",
            Self::Unreferenced => "Unreferenced",
            Self::NotAccepted => "NotAccepted",
        }
    }
}

/// The compile's conclusion about one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// `Ok` when accepted.
    pub accepted: Result<(), Rejection>,
    /// Whether it is published.
    pub publication: Publication,
    /// Templates: how many published addresses use it.
    pub used_by: u32,
}

impl Verdict {
    /// An accepted object with the given publication.
    pub fn accepted(publication: Publication) -> Self {
        Self {
            accepted: Ok(()),
            publication,
            used_by: 0,
        }
    }

    /// A rejected object.
    pub fn rejected(rejection: Rejection) -> Self {
        Self {
            accepted: Err(rejection),
            publication: Publication::NotAccepted,
            used_by: 0,
        }
    }

    /// True when accepted.
    pub fn is_accepted(&self) -> bool {
        self.accepted.is_ok()
    }
}
