//! Numbering and change detection of the two payloads: a payload is written only when its
//! content changed (or its last write failed), and each write carries a generation one above
//! the last. What counts as published is only what was written whole: a failed write keeps the
//! last published payload (the drop guard compares against it) and has the next pass write again.

use gtm_crds::config::{ActiveSelections, ContractError, GtmConfig, HealthSnapshot, TaskList};
use gtm_crds::parts::Payload;

/// A payload that is numbered and written as JSON.
trait Numbered: Clone + PartialEq {
    /// The payload's generation field.
    fn generation_mut(&mut self) -> &mut u64;
    fn to_text(&self) -> String;
}

impl Numbered for GtmConfig {
    fn generation_mut(&mut self) -> &mut u64 {
        &mut self.generation
    }
    fn to_text(&self) -> String {
        String::from_utf8(self.to_json()).expect("JSON is UTF-8")
    }
}

impl Numbered for HealthSnapshot {
    fn generation_mut(&mut self) -> &mut u64 {
        &mut self.generation
    }
    fn to_text(&self) -> String {
        serde_json::to_string(self).expect("a snapshot serializes")
    }
}

/// One payload's numbering: what was last written whole, what is being written, and whether
/// the last write failed.
#[derive(Debug)]
struct Track<T> {
    published: Option<T>,
    generation: u64,
    pending: Option<T>,
    rewrite: bool,
}

impl<T> Default for Track<T> {
    fn default() -> Self {
        Self {
            published: None,
            generation: 0,
            pending: None,
            rewrite: false,
        }
    }
}

impl<T: Numbered> Track<T> {
    fn resume(mut published: Option<T>) -> Self {
        Self {
            generation: published.as_mut().map_or(0, |p| *p.generation_mut()),
            published,
            ..Self::default()
        }
    }

    /// The text to write when `next` differs from the published one or the last write failed.
    fn next(&mut self, mut next: T) -> Option<String> {
        *next.generation_mut() = self.generation;
        if !self.rewrite && self.published.as_ref() == Some(&next) {
            return None;
        }
        self.generation += 1;
        *next.generation_mut() = self.generation;
        let text = next.to_text();
        self.pending = Some(next);
        Some(text)
    }

    fn written(&mut self) {
        if let Some(pending) = self.pending.take() {
            self.published = Some(pending);
        }
        self.rewrite = false;
    }

    fn failed(&mut self) {
        self.pending = None;
        self.rewrite = true;
    }
}

/// The last published payloads and their generations.
#[derive(Debug, Default)]
pub(crate) struct PayloadState {
    config: Track<GtmConfig>,
    health: Track<HealthSnapshot>,
    /// The task list of the config to serve and that config's generation: computed once per
    /// config, not at every health publish (at 100 000 addresses, a set and a SHA-256 over
    /// 100 000 ids).
    task_list: Option<(u64, TaskList<'static>)>,
}

impl PayloadState {
    /// Starts from what was published before a restart: numbering continues after it, and
    /// an unchanged payload is not written again.
    pub(crate) fn resume(config: Option<GtmConfig>, health: Option<HealthSnapshot>) -> Self {
        Self {
            config: Track::resume(config),
            health: Track::resume(health),
            task_list: None,
        }
    }

    /// The config to write, numbered and with its zones' SOA serials ([`crate::serials`]), as
    /// JSON, when it differs from the last one; `now` is the Unix time in seconds. A config
    /// that breaks the contract's consistency rules is refused (the DNS pods would refuse it
    /// too), so the last one keeps serving.
    pub(crate) fn next_config(
        &mut self,
        mut config: GtmConfig,
        now: u32,
    ) -> Result<Option<String>, ContractError> {
        crate::serials::assign(&mut config, self.config.published.as_ref(), now);
        config.check_consistency()?;
        Ok(self.config.next(config))
    }

    /// The health snapshot to write, numbered, as JSON, when it differs from the last one.
    pub(crate) fn next_health(&mut self, health: HealthSnapshot) -> Option<String> {
        self.health.next(health)
    }

    /// Records that the payload last handed out was written whole: it is the published one now.
    pub(crate) fn written(&mut self, payload: Payload) {
        match payload {
            Payload::Config => self.config.written(),
            Payload::Health => self.health.written(),
        }
    }

    /// Records that writing the payload last handed out failed (it may be there partly or not
    /// at all): the published one stays what it was, and the next pass writes again (with a
    /// new generation) even when nothing changed.
    pub(crate) fn failed(&mut self, payload: Payload) {
        match payload {
            Payload::Config => self.config.failed(),
            Payload::Health => self.health.failed(),
        }
    }

    /// The active selections last published (kept by non-preemptive levels across restarts).
    pub(crate) fn last_active(&self) -> ActiveSelections {
        self.health
            .published
            .as_ref()
            .map(|h| h.active.clone())
            .unwrap_or_default()
    }

    /// The config last published (or found published after a restart).
    pub(crate) fn last_config(&self) -> Option<&GtmConfig> {
        self.config.published.as_ref()
    }

    /// The task list ([`TaskList`]) of the config the DNS pods serve once this pass's writes
    /// land: the one being written, or else the one last published. Every config handed out
    /// has a generation of its own, by which the list is kept.
    pub(crate) fn task_list_to_serve(&mut self) -> Option<&TaskList<'static>> {
        let config = self
            .config
            .pending
            .as_ref()
            .or(self.config.published.as_ref())?;
        if self.task_list.as_ref().map(|(generation, _)| *generation) != Some(config.generation) {
            self.task_list = Some((config.generation, TaskList::of(config).into_owned()));
        }
        self.task_list.as_ref().map(|(_, list)| list)
    }

    /// The health snapshot last published.
    pub(crate) fn last_health(&self) -> Option<&HealthSnapshot> {
        self.health.published.as_ref()
    }

    /// The generation of a payload last handed out to be written.
    pub(crate) fn generation(&self, payload: Payload) -> u64 {
        match payload {
            Payload::Config => self.config.generation,
            Payload::Health => self.health.generation,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u32 = 1_800_000_000;

    fn generation_of(text: Option<String>) -> u64 {
        GtmConfig::from_json(text.unwrap().as_bytes())
            .unwrap()
            .generation
    }

    #[test]
    fn writes_only_changes_and_numbers_them() {
        let mut s = PayloadState::default();
        let mut c = GtmConfig::empty(vec!["gtm.example.com".into()]);
        assert_eq!(generation_of(s.next_config(c.clone(), NOW).unwrap()), 1);
        s.written(Payload::Config);
        assert!(s.next_config(c.clone(), NOW).unwrap().is_none());
        c.zones.push("other.example.com".into());
        assert_eq!(generation_of(s.next_config(c.clone(), NOW).unwrap()), 2);

        let h = HealthSnapshot::empty();
        let text = s.next_health(h.clone()).unwrap();
        assert_eq!(
            HealthSnapshot::from_json(text.as_bytes())
                .unwrap()
                .generation,
            1
        );
        s.written(Payload::Health);
        assert!(s.next_health(h.clone()).is_none());
    }

    #[test]
    fn a_failed_write_keeps_the_published_payload_and_writes_again() {
        let mut s = PayloadState::default();
        let one = GtmConfig::empty(vec!["a.example".into()]);
        s.next_config(one.clone(), NOW).unwrap().unwrap();
        s.written(Payload::Config);

        let two = GtmConfig::empty(vec!["b.example".into()]);
        assert_eq!(generation_of(s.next_config(two.clone(), NOW).unwrap()), 2);
        s.failed(Payload::Config);
        assert_eq!(
            s.last_config().map(|c| &c.zones),
            Some(&one.zones),
            "what serves is still the one written whole"
        );
        // The same change again: written again, numbered on.
        assert_eq!(generation_of(s.next_config(two.clone(), NOW).unwrap()), 3);
        s.failed(Payload::Config);
        // Back to the published content: written too, as the failed write may have left
        // parts of the other one behind.
        assert_eq!(generation_of(s.next_config(one, NOW).unwrap()), 4);
        s.written(Payload::Config);
        assert_eq!(s.last_config().map(|c| c.generation), Some(4));
    }

    #[test]
    fn an_inconsistent_config_is_refused_and_the_last_one_stays() {
        let mut s = PayloadState::default();
        let good = GtmConfig::empty(vec!["gtm.example.com".into()]);
        assert!(s.next_config(good.clone(), NOW).unwrap().is_some());
        s.written(Payload::Config);
        let bad = GtmConfig::empty(vec!["Not.Canonical".into()]);
        assert!(s.next_config(bad, NOW).is_err());
        assert!(
            s.next_config(good, NOW).unwrap().is_none(),
            "the good one is still the last"
        );
    }

    #[test]
    fn resumed_state_skips_unchanged_payloads_and_numbers_on() {
        let mut old = GtmConfig::empty(vec!["a.example".into()]);
        old.generation = 41;
        crate::serials::assign(&mut old, None, NOW - 60);
        let mut health = HealthSnapshot::empty();
        health.generation = 7;
        let mut s = PayloadState::resume(Some(old), Some(health));
        assert!(
            s.next_config(GtmConfig::empty(vec!["a.example".into()]), NOW)
                .unwrap()
                .is_none(),
            "the serial found published is kept: a restart changes nothing"
        );
        assert!(s.next_health(HealthSnapshot::empty()).is_none());
        let new = GtmConfig::empty(vec!["b.example".into()]);
        assert_eq!(generation_of(s.next_config(new, NOW).unwrap()), 42);
    }

    #[test]
    fn the_active_selections_are_resumed_too() {
        let mut health = HealthSnapshot::empty();
        health.active.domains.insert("ns/d".into(), "ns/b".into());
        let s = PayloadState::resume(None, Some(health));
        assert_eq!(s.last_active().domains["ns/d"], "ns/b");
    }
}
