//! The vote of a task's probe locations (GTM 3.0's failure rate): pure.
//!
//! The voters are the fresh locations the template selects that have a verdict for the task;
//! a location that is stale, not selected, or has no verdict yet (`Unknown`) abstains. The task
//! is `Down` when the share of voters that see it down exceeds `failureRatePercent`, or when
//! all of them do (so 100 % means "every voter", and one voter alone always decides); else it
//! is `Up`. With no voter there is no decision: the caller keeps the last verdict.
//!
//! GTM's API words the rule "exceeds the threshold" (a GTM 2.0 page says "reaches"): with
//! three locations at 50 %, one failing location does not fail a task over, two do; with two
//! locations at 50 %, one alone does not.

use gtm_crds::pool::HealthState;

/// How many voters see a task up and down.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Votes {
    /// Voters that see it up.
    pub up: u32,
    /// Voters that see it down.
    pub down: u32,
}

impl Votes {
    /// Counts one location's verdict; `Unknown` abstains.
    pub(crate) fn add(&mut self, state: HealthState) {
        match state {
            HealthState::Up => self.up += 1,
            HealthState::Down => self.down += 1,
            HealthState::Unknown => {}
        }
    }

    /// The verdict at failure rate `rate_percent`, or `None` when nobody voted.
    pub(crate) fn decide(self, rate_percent: u8) -> Option<HealthState> {
        let voters = self.up + self.down;
        if voters == 0 {
            return None;
        }
        let exceeds = u64::from(self.down) * 100 > u64::from(rate_percent) * u64::from(voters);
        Some(if exceeds || self.down == voters {
            HealthState::Down
        } else {
            HealthState::Up
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HealthState::{Down, Up};

    fn votes(up: u32, down: u32) -> Votes {
        Votes { up, down }
    }

    #[test]
    fn the_boundaries_of_the_failure_rate() {
        let table = [
            // (up, down, rate, verdict)
            (2, 1, 50, Some(Up)),   // 1 of 3 at 50 %: 33 % does not exceed it
            (1, 2, 50, Some(Down)), // 2 of 3: 67 % does
            (1, 1, 50, Some(Up)),   // 1 of 2: 50 % reaches it but does not exceed it
            (1, 1, 49, Some(Down)), // ... and exceeds 49 %
            (0, 1, 50, Some(Down)), // one voter decides alone, whatever the rate
            (1, 0, 1, Some(Up)),
            (0, 1, 100, Some(Down)), // 100 %: every voter
            (1, 2, 100, Some(Up)),
            (0, 3, 100, Some(Down)),
            (4, 1, 20, Some(Up)), // 20 % of 5 is reached, not exceeded
            (3, 2, 20, Some(Down)),
            (0, 0, 50, None), // nobody voted: no decision
        ];
        for (up, down, rate, verdict) in table {
            assert_eq!(
                votes(up, down).decide(rate),
                verdict,
                "{up} up, {down} down at {rate} %"
            );
        }
    }

    #[test]
    fn unknown_abstains() {
        let mut v = Votes::default();
        for s in [Up, HealthState::Unknown, Down, HealthState::Unknown] {
            v.add(s);
        }
        assert_eq!(v, votes(1, 1));
    }
}
