//! Numbering and change detection of the two payloads: a payload is written only when its
//! content changed, and each write carries a generation one above the last.

use gtm_crds::config::{ActiveSelections, ContractError, GtmConfig, HealthSnapshot};
use gtm_crds::parts::Payload;

/// The last published payloads and their generations.
#[derive(Debug, Default)]
pub struct PayloadState {
    config: Option<GtmConfig>,
    config_generation: u64,
    health: Option<HealthSnapshot>,
    health_generation: u64,
}

impl PayloadState {
    /// Starts from what was published before a restart: numbering continues after it, and
    /// an unchanged payload is not written again.
    pub fn resume(config: Option<GtmConfig>, health: Option<HealthSnapshot>) -> Self {
        Self {
            config_generation: config.as_ref().map_or(0, |c| c.generation),
            health_generation: health.as_ref().map_or(0, |h| h.generation),
            config,
            health,
        }
    }

    /// The config to write, numbered, as JSON, when it differs from the last one. A config
    /// that breaks the contract's consistency rules is refused (the DNS pods would refuse it
    /// too), so the last one keeps serving.
    pub fn next_config(&mut self, mut config: GtmConfig) -> Result<Option<String>, ContractError> {
        config.check_consistency()?;
        config.generation = self.config_generation;
        if self.config.as_ref() == Some(&config) {
            return Ok(None);
        }
        self.config_generation += 1;
        config.generation = self.config_generation;
        let text = String::from_utf8(config.to_json()).expect("JSON is UTF-8");
        self.config = Some(config);
        Ok(Some(text))
    }

    /// The health snapshot to write, numbered, as JSON, when it differs from the last one.
    pub fn next_health(&mut self, mut health: HealthSnapshot) -> Option<String> {
        health.generation = self.health_generation;
        if self.health.as_ref() == Some(&health) {
            return None;
        }
        self.health_generation += 1;
        health.generation = self.health_generation;
        let text = serde_json::to_string(&health).expect("a snapshot serializes");
        self.health = Some(health);
        Some(text)
    }

    /// Forgets what was last written of a payload, after a failed write: the next pass
    /// writes it again (with a new generation) even when nothing changed.
    pub fn forget(&mut self, payload: Payload) {
        match payload {
            Payload::Config => self.config = None,
            Payload::Health => self.health = None,
        }
    }

    /// The active selections last published (kept by non-preemptive levels across restarts).
    pub fn last_active(&self) -> ActiveSelections {
        self.health
            .as_ref()
            .map(|h| h.active.clone())
            .unwrap_or_default()
    }

    /// The config last published (or found published after a restart).
    pub fn last_config(&self) -> Option<&GtmConfig> {
        self.config.as_ref()
    }

    /// The health snapshot last published.
    pub fn last_health(&self) -> Option<&HealthSnapshot> {
        self.health.as_ref()
    }

    /// The generation of the last config written.
    pub fn config_generation(&self) -> u64 {
        self.config_generation
    }

    /// The generation of the last health snapshot written.
    pub fn health_generation(&self) -> u64 {
        self.health_generation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_only_changes_and_numbers_them() {
        let mut s = PayloadState::default();
        let mut c = GtmConfig::empty(vec!["gtm.example.com".into()]);
        let generation = |text: Option<String>| {
            GtmConfig::from_json(text.unwrap().as_bytes())
                .unwrap()
                .generation
        };
        assert_eq!(generation(s.next_config(c.clone()).unwrap()), 1);
        assert!(s.next_config(c.clone()).unwrap().is_none());
        c.zones.push("other.example.com".into());
        assert_eq!(generation(s.next_config(c.clone()).unwrap()), 2);

        let h = HealthSnapshot::empty();
        let text = s.next_health(h.clone()).unwrap();
        assert_eq!(
            HealthSnapshot::from_json(text.as_bytes())
                .unwrap()
                .generation,
            1
        );
        assert!(s.next_health(h.clone()).is_none());

        // After a failed write the same content is written again, numbered on.
        s.forget(Payload::Health);
        let text = s.next_health(h).unwrap();
        assert_eq!(
            HealthSnapshot::from_json(text.as_bytes())
                .unwrap()
                .generation,
            2
        );
    }

    #[test]
    fn an_inconsistent_config_is_refused_and_the_last_one_stays() {
        let mut s = PayloadState::default();
        let good = GtmConfig::empty(vec!["gtm.example.com".into()]);
        assert!(s.next_config(good.clone()).unwrap().is_some());
        let bad = GtmConfig::empty(vec!["Not.Canonical".into()]);
        assert!(s.next_config(bad).is_err());
        assert!(
            s.next_config(good).unwrap().is_none(),
            "the good one is still the last"
        );
    }

    #[test]
    fn resumed_state_skips_unchanged_payloads_and_numbers_on() {
        let mut old = GtmConfig::empty(vec!["a.example".into()]);
        old.generation = 41;
        let mut health = HealthSnapshot::empty();
        health.generation = 7;
        let mut s = PayloadState::resume(Some(old), Some(health));
        assert!(
            s.next_config(GtmConfig::empty(vec!["a.example".into()]))
                .unwrap()
                .is_none()
        );
        assert!(s.next_health(HealthSnapshot::empty()).is_none());
        let new = GtmConfig::empty(vec!["b.example".into()]);
        let text = s.next_config(new).unwrap().unwrap();
        assert_eq!(
            GtmConfig::from_json(text.as_bytes()).unwrap().generation,
            42
        );
    }

    #[test]
    fn the_active_selections_are_resumed_too() {
        let mut health = HealthSnapshot::empty();
        health.active.domains.insert("ns/d".into(), "ns/b".into());
        let s = PayloadState::resume(None, Some(health));
        assert_eq!(s.last_active().domains["ns/d"], "ns/b");
    }
}
