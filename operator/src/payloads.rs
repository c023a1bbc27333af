//! Numbering and change detection of the two payloads: a payload is written only when its
//! content changed, and each write carries a generation one above the last.

use gtm_crds::config::{GtmConfig, HealthSnapshot};

/// The last published payloads and their generations.
#[derive(Debug, Default)]
pub struct PayloadState {
    config: Option<GtmConfig>,
    config_generation: u64,
    health: Option<HealthSnapshot>,
    health_generation: u64,
}

impl PayloadState {
    /// Starts numbering after the given generations (read back from what was published before
    /// a restart), so that generations only grow; the first payloads are always written.
    pub fn resume(config_generation: u64, health_generation: u64) -> Self {
        Self {
            config_generation,
            health_generation,
            ..Self::default()
        }
    }

    /// The config to write, numbered, when it differs from the last one.
    pub fn next_config(&mut self, mut config: GtmConfig) -> Option<&GtmConfig> {
        config.generation = self.config_generation;
        if self.config.as_ref() == Some(&config) {
            return None;
        }
        self.config_generation += 1;
        config.generation = self.config_generation;
        self.config = Some(config);
        self.config.as_ref()
    }

    /// The health snapshot to write, numbered, when it differs from the last one.
    pub fn next_health(&mut self, mut health: HealthSnapshot) -> Option<&HealthSnapshot> {
        health.generation = self.health_generation;
        if self.health.as_ref() == Some(&health) {
            return None;
        }
        self.health_generation += 1;
        health.generation = self.health_generation;
        self.health = Some(health);
        self.health.as_ref()
    }

    /// The generation of the last config written.
    pub fn config_generation(&self) -> u64 {
        self.config_generation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_only_changes_and_numbers_them() {
        let mut s = PayloadState::default();
        let mut c = GtmConfig::empty(vec!["gtm.example.com".into()]);
        assert_eq!(s.next_config(c.clone()).unwrap().generation, 1);
        assert!(s.next_config(c.clone()).is_none());
        c.zones.push("other.example.com".into());
        assert_eq!(s.next_config(c.clone()).unwrap().generation, 2);

        let h = HealthSnapshot::empty();
        assert_eq!(s.next_health(h.clone()).unwrap().generation, 1);
        assert!(s.next_health(h).is_none());
    }

    #[test]
    fn resumed_numbering_continues_and_rewrites_once() {
        let mut s = PayloadState::resume(41, 7);
        let c = GtmConfig::empty(Vec::new());
        assert_eq!(s.next_config(c.clone()).unwrap().generation, 42);
        assert!(s.next_config(c).is_none());
        assert_eq!(
            s.next_health(HealthSnapshot::empty()).unwrap().generation,
            8
        );
    }
}
