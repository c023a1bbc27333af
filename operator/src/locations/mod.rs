//! Probe locations: the embedded prober (location `local`) and every `gtm-prober` that reports,
//! and the vote that turns their verdicts into the health the operator publishes.
//!
//! - [`vote`]: the failure-rate vote of one task (pure).
//! - [`book`]: the remote locations, their freshness and verdicts (pure).
//! - [`quorum`]: every task voted, with the last verdict kept where nobody votes (pure).
//! - [`files`] and [`configmaps`]: the reports as local mode and cluster mode read them.

pub(crate) mod book;
pub(crate) mod configmaps;
pub(crate) mod files;
pub(crate) mod quorum;
pub(crate) mod vote;

use std::time::SystemTime;

use gtm_crds::location::{EMBEDDED_LOCATION, Heartbeat, Verdicts};

pub(crate) use book::{FreshnessChange, LocationBook};
pub(crate) use quorum::{Embedded, HealthView, LatencyView, Quorum, Reporting};
pub(crate) use vote::Votes;

/// Why a report was not taken.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReportError {
    /// The report does not parse or breaks the contract.
    #[error(transparent)]
    Contract(#[from] gtm_crds::config::ContractError),
    /// The report names another location than the object or file it is in.
    #[error("it is stored as location {stored:?} but says {says:?}")]
    Misplaced {
        /// The location of the object or file.
        stored: String,
        /// The location the report names.
        says: String,
    },
    /// A remote location calls itself `local`, the embedded prober's name.
    #[error("the location name {EMBEDDED_LOCATION:?} belongs to the operator's embedded prober")]
    Reserved,
}

/// Checks that a report of `stored` names it, and that it is not the embedded location.
fn check_place(stored: &str, says: &str) -> Result<(), ReportError> {
    if stored == EMBEDDED_LOCATION {
        return Err(ReportError::Reserved);
    }
    if stored != says {
        return Err(ReportError::Misplaced {
            stored: stored.into(),
            says: says.into(),
        });
    }
    Ok(())
}

/// Takes a heartbeat of `location` read at `now`; returns whether the book changed.
pub(crate) fn take_heartbeat(
    book: &mut LocationBook,
    location: &str,
    bytes: &[u8],
    now: SystemTime,
) -> Result<bool, ReportError> {
    let heartbeat = Heartbeat::from_json(bytes)?;
    check_place(location, &heartbeat.location)?;
    Ok(book.heartbeat(&heartbeat, now))
}

/// Takes the verdicts of `location`; returns whether the book changed.
pub(crate) fn take_verdicts(
    book: &mut LocationBook,
    location: &str,
    bytes: &[u8],
) -> Result<bool, ReportError> {
    let verdicts = Verdicts::from_json(bytes)?;
    check_place(location, &verdicts.location)?;
    Ok(book.verdicts(&verdicts))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn reports_must_name_their_own_location_and_not_the_embedded_one() {
        let mut book = LocationBook::new(Duration::from_secs(30));
        let eu = Verdicts::new("eu", 1, []).to_json();
        assert!(take_verdicts(&mut book, "eu", eu.as_bytes()).unwrap());
        let err = take_verdicts(&mut book, "us", eu.as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"it is stored as location "us" but says "eu""#
        );
        let local = Verdicts::new("local", 1, []).to_json();
        assert!(matches!(
            take_verdicts(&mut book, "local", local.as_bytes()),
            Err(ReportError::Reserved)
        ));
        assert!(take_heartbeat(&mut book, "eu", b"{}", SystemTime::now()).is_err());
    }
}
