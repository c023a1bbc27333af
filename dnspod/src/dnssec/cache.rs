//! Signatures cached per thread: each UDP worker and runtime thread keeps its own map, so a
//! lookup takes no lock. An RRset is identified by the key load it is signed with (its epoch,
//! new at every compile, so entries never outlive the snapshot whose records they name) and
//! the addresses of its records in that snapshot (in any order: RoundRobin rotations of one
//! set share one signature), or by the name and type of a NODATA proof. Entries are re-made a
//! day after signing; a full map is emptied, which bounds it.

use std::cell::RefCell;
use std::sync::Arc;

use hickory_server::proto::rr::{LowerName, Record, RecordType};
use rustc_hash::FxHashMap;
use smallvec::SmallVec;

/// Entries per thread at most.
const CAPACITY: usize = 16 * 1024;
/// A signature is re-made this long after it was made (seconds).
pub(super) const REFRESH_AFTER: u32 = 86400;

/// What a cached entry proves.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum Subject {
    /// An RRset of the snapshot: its records' addresses, sorted.
    Records(SmallVec<[usize; 4]>),
    /// The NODATA proof of a name for a type.
    NoData(LowerName, RecordType),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    epoch: u64,
    subject: Subject,
}

/// Records made for an answer (a signature, or an NSEC and its signature), shared.
pub(crate) type Made = Arc<[Record]>;

thread_local! {
    static CACHE: RefCell<FxHashMap<Key, (u32, Made)>> = RefCell::default();
}

/// The subject of `rrset`.
pub(super) fn records(rrset: &[&Record]) -> Subject {
    let mut addresses: SmallVec<[usize; 4]> = rrset
        .iter()
        .map(|r| std::ptr::from_ref(*r) as usize)
        .collect();
    addresses.sort_unstable();
    Subject::Records(addresses)
}

/// The records cached for `subject` under `epoch` when made less than [`REFRESH_AFTER`]
/// before `now`, else those `make` makes (then cached).
pub(super) fn get_or_make<E>(
    epoch: u64,
    subject: Subject,
    now: u32,
    make: impl FnOnce() -> Result<Made, E>,
) -> Result<Made, E> {
    let key = Key { epoch, subject };
    let hit = CACHE.with_borrow(|c| {
        c.get(&key)
            .filter(|(made, _)| now.wrapping_sub(*made) < REFRESH_AFTER)
            .map(|(_, records)| records.clone())
    });
    if let Some(records) = hit {
        return Ok(records);
    }
    let records = make()?;
    CACHE.with_borrow_mut(|c| {
        if c.len() >= CAPACITY {
            c.clear();
        }
        c.insert(key, (now, records.clone()));
    });
    Ok(records)
}

#[cfg(test)]
mod tests {
    use hickory_server::proto::rr::rdata::A;
    use hickory_server::proto::rr::{Name, RData};

    use super::*;

    fn made(n: u8) -> Result<Made, ()> {
        let name = Name::from_ascii("a.example.").unwrap();
        Ok(Arc::from(vec![Record::from_rdata(
            name,
            1,
            RData::A(A::new(n, 0, 0, 0)),
        )]))
    }

    #[test]
    fn entries_are_reused_until_refreshed_and_never_across_epochs() {
        let subject = || Subject::Records([1usize, 2].into_iter().collect());
        let first = get_or_make(7, subject(), 1000, || made(1)).unwrap();
        let again = get_or_make(7, subject(), 1000 + REFRESH_AFTER - 1, || made(2)).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let other_epoch = get_or_make(8, subject(), 1000, || made(3)).unwrap();
        assert!(!Arc::ptr_eq(&first, &other_epoch));
        let refreshed = get_or_make(7, subject(), 1000 + REFRESH_AFTER, || made(4)).unwrap();
        assert!(!Arc::ptr_eq(&first, &refreshed));
    }

    #[test]
    fn rotations_of_one_set_are_one_subject() {
        let name = Name::from_ascii("a.example.").unwrap();
        let a = Record::from_rdata(name.clone(), 1, RData::A(A::new(1, 1, 1, 1)));
        let b = Record::from_rdata(name, 1, RData::A(A::new(2, 2, 2, 2)));
        assert_eq!(records(&[&a, &b]), records(&[&b, &a]));
        assert_ne!(records(&[&a]), records(&[&a, &b]));
    }
}
