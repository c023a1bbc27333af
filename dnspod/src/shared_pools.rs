//! The config a DNS pod serves, with its pools shared between reloads.
//!
//! A reload parses the next config while the last one serves, so every pool parsed is held
//! twice unless the two share it. Here each pool of the next config is compared, as soon as it
//! is parsed, with the pool of the same id in the config being served; an equal one is dropped
//! at once and the served one is kept in its place ([`SharedPool`] is a reference-counted
//! handle). A republished config (a new generation, a domain edited) then allocates only the
//! pools that changed, and never holds the whole next config beside the served one: at
//! 100 000 addresses the pools are most of a config's 30 MB of parsed data and of its small
//! allocations.
//!
//! serde gives a derived `Deserialize` no context, so the served pools are lent to the parse
//! through a thread-local for the length of one [`parse`] call.

use std::borrow::Borrow;
use std::cell::RefCell;
use std::hash::BuildHasher as _;
use std::ops::Deref;
use std::sync::Arc;

use gtm_crds::config::{ContractError, GtmConfig, PoolConfig};
use rustc_hash::{FxBuildHasher, FxHashMap};
use serde::{Deserialize, Deserializer};

/// A config as the DNS pod holds it: its pools shared with the configs served before and after
/// it wherever they are equal.
pub type ServedConfig = GtmConfig<SharedPool>;

/// A pool of a [`ServedConfig`], possibly shared with other configs.
#[derive(Clone, Debug, PartialEq)]
pub struct SharedPool(Arc<PoolConfig>);

impl SharedPool {
    /// Whether `self` and `other` are the same allocation (so, equal without comparing).
    pub fn is_shared_with(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl From<PoolConfig> for SharedPool {
    fn from(pool: PoolConfig) -> Self {
        Self(Arc::new(pool))
    }
}

impl Deref for SharedPool {
    type Target = PoolConfig;

    fn deref(&self) -> &PoolConfig {
        &self.0
    }
}

impl Borrow<PoolConfig> for SharedPool {
    fn borrow(&self) -> &PoolConfig {
        &self.0
    }
}

/// The pools of the config being served, lent to [`parse`]: the pools, and their positions by
/// a hash of their ids (no copy of 10 000 ids; two ids of one hash just share nothing).
struct Served {
    pools: Vec<SharedPool>,
    by_id: FxHashMap<u64, usize>,
}

impl Served {
    fn of(config: &ServedConfig) -> Self {
        let by_id = config
            .pools
            .iter()
            .enumerate()
            .map(|(i, p)| (FxBuildHasher.hash_one(&p.id), i))
            .collect();
        Self {
            pools: config.pools.clone(),
            by_id,
        }
    }

    /// The served pool equal to `pool`, if any.
    fn same(&self, pool: &PoolConfig) -> Option<SharedPool> {
        let index = *self.by_id.get(&FxBuildHasher.hash_one(&pool.id))?;
        let served = &self.pools[index];
        (**served == *pool).then(|| served.clone())
    }
}

thread_local! {
    static SERVED: RefCell<Option<Served>> = const { RefCell::new(None) };
}

/// Lends the served pools to the parses on this thread until dropped (also when a parse fails
/// or panics).
struct Lent;

impl Lent {
    fn new(served: Option<&ServedConfig>) -> Self {
        SERVED.set(served.map(Served::of));
        Self
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        SERVED.set(None);
    }
}

impl<'de> Deserialize<'de> for SharedPool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let pool = PoolConfig::deserialize(d)?;
        let same = SERVED.with_borrow(|served| served.as_ref().and_then(|s| s.same(&pool)));
        Ok(same.unwrap_or_else(|| pool.into()))
    }
}

/// Parses, version-checks and consistency-checks the next config (as
/// [`GtmConfig::from_json`]), sharing every pool equal to the pool of the same id in `served`.
pub fn parse(bytes: &[u8], served: Option<&ServedConfig>) -> Result<ServedConfig, ContractError> {
    let _lent = Lent::new(served);
    ServedConfig::parse(bytes)
}

/// `config` as the DNS pod holds it, sharing nothing yet.
pub fn served(config: GtmConfig) -> ServedConfig {
    config.map_pools(SharedPool::from)
}

#[cfg(test)]
mod tests {
    use gtm_crds::RecordType;
    use gtm_crds::common::LbPolicy;

    use super::*;
    use crate::engine::tests::fixtures::{addr, config, domain, member, pool};

    /// Two domains, each of its own pool.
    fn two_pools(generation: u64, second: &str) -> GtmConfig {
        config(
            generation,
            ["a", "b"]
                .map(|l| domain(l, RecordType::A, LbPolicy::RoundRobin, vec![member(l)]))
                .into(),
            vec![
                pool("a", LbPolicy::RoundRobin, vec![addr("192.0.2.1")]),
                pool("b", LbPolicy::RoundRobin, vec![addr(second)]),
            ],
        )
    }

    #[test]
    fn a_republished_config_shares_its_unchanged_pools_and_parses_the_changed_ones() {
        let first = parse(&two_pools(1, "192.0.2.2").to_json(), None).unwrap();
        let again = parse(&two_pools(2, "192.0.2.2").to_json(), Some(&first)).unwrap();
        assert_eq!(again, served(two_pools(2, "192.0.2.2")));
        assert!(again.pools[0].is_shared_with(&first.pools[0]));
        assert!(again.pools[1].is_shared_with(&first.pools[1]));

        let next = parse(&two_pools(3, "192.0.2.3").to_json(), Some(&again)).unwrap();
        assert_eq!(next, served(two_pools(3, "192.0.2.3")));
        assert!(next.pools[0].is_shared_with(&first.pools[0]));
        assert!(!next.pools[1].is_shared_with(&first.pools[1]));
    }

    #[test]
    fn nothing_is_lent_after_a_parse_even_a_refused_one() {
        let json = two_pools(1, "192.0.2.2").to_json();
        let first = parse(&json, None).unwrap();
        assert!(parse(b"{not json", Some(&first)).is_err());
        let again = parse(&json, None).unwrap();
        assert!(!again.pools[0].is_shared_with(&first.pools[0]));
    }
}
