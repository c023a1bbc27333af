//! The access-domain record types of the contract ([`gtm_crds::RecordType`]) as the DNS pod
//! handles them: the DNS type each answers, and [`ByType`], a table with one value per type.
//!
//! Every match on a record type in the DNS pod is exhaustive and every per-type table is a
//! [`ByType`], so a record type added to the contract fails to compile until the engine
//! (`engine`: which queries it answers), the fast path (`fast_path`: whether it writes the
//! records itself) and the metrics (`metrics`: one counter row per type) handle it.

use gtm_crds::RecordType as DomainType;
use hickory_server::proto::rr::RecordType;

/// The DNS type of the records a record type's access domains answer with (a Domain pool may
/// answer an A or AAAA access domain with a CNAME).
pub(crate) fn qtype(t: DomainType) -> RecordType {
    match t {
        DomainType::A => RecordType::A,
        DomainType::AAAA => RecordType::AAAA,
        DomainType::CNAME => RecordType::CNAME,
    }
}

/// The access-domain record type a DNS query type asks for, if any.
pub(crate) fn of_qtype(q: RecordType) -> Option<DomainType> {
    ByType::from_fn(qtype)
        .iter()
        .find(|(_, answered)| **answered == q)
        .map(|(t, _)| t)
}

/// One value per access-domain record type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ByType<T> {
    a: T,
    aaaa: T,
    cname: T,
}

impl<T> ByType<T> {
    /// The table holding `f(t)` for every type `t`.
    pub(crate) fn from_fn(mut f: impl FnMut(DomainType) -> T) -> Self {
        Self {
            a: f(DomainType::A),
            aaaa: f(DomainType::AAAA),
            cname: f(DomainType::CNAME),
        }
    }

    /// The value of type `t`.
    pub(crate) fn get(&self, t: DomainType) -> &T {
        match t {
            DomainType::A => &self.a,
            DomainType::AAAA => &self.aaaa,
            DomainType::CNAME => &self.cname,
        }
    }

    /// The value of type `t`, to change.
    pub(crate) fn get_mut(&mut self, t: DomainType) -> &mut T {
        match t {
            DomainType::A => &mut self.a,
            DomainType::AAAA => &mut self.aaaa,
            DomainType::CNAME => &mut self.cname,
        }
    }

    /// Every type with its value, in the order A, AAAA, CNAME: the order in which `ANY` takes
    /// the first access domain at a name, and the metrics list the types.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (DomainType, &T)> {
        let Self { a, aaaa, cname } = self;
        [
            (DomainType::A, a),
            (DomainType::AAAA, aaaa),
            (DomainType::CNAME, cname),
        ]
        .into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_its_own_slot_in_order() {
        let types = ByType::from_fn(|t| t);
        let listed: Vec<DomainType> = types.iter().map(|(t, _)| t).collect();
        assert_eq!(listed, [DomainType::A, DomainType::AAAA, DomainType::CNAME]);
        for (t, value) in types.iter() {
            assert_eq!((*value, *types.get(t)), (t, t));
        }
        let mut counts = ByType::<u8>::default();
        *counts.get_mut(DomainType::AAAA) += 1;
        assert_eq!(
            counts.iter().map(|(_, c)| *c).collect::<Vec<_>>(),
            [0, 1, 0]
        );
    }

    #[test]
    fn query_types_map_to_record_types_and_back() {
        for (t, _) in ByType::from_fn(|t| t).iter() {
            assert_eq!(of_qtype(qtype(t)), Some(t));
        }
        for other in [
            RecordType::SOA,
            RecordType::NS,
            RecordType::ANY,
            RecordType::TXT,
        ] {
            assert_eq!(of_qtype(other), None);
        }
    }
}
