//! Payload bytes as the DNS pod's loader takes them: `health.json`, then `config.json` (parse,
//! validate, compile, swap). A refusal is fine; a panic is not. The bytes are also offered as
//! the numbered verdicts (schema 1.3) of a health payload numbered by the fixture config's task
//! list, so that the by-number path is reached without the fuzzer finding the digest.
#![no_main]

use std::sync::OnceLock;

use gtm_crds::config::{GtmConfig, TaskList};
use gtm_crds::parts::Payload;
use gtm_dnspod::state::{Loader, Shared};
use gtm_dnspod::zone::ZoneSettings;
use libfuzzer_sys::fuzz_target;

const CONFIG: &[u8] = include_bytes!("../fixtures/config.json");

/// The digest of the fixture config's task list.
fn task_list() -> &'static str {
    static DIGEST: OnceLock<String> = OnceLock::new();
    DIGEST.get_or_init(|| {
        let config = GtmConfig::from_json(CONFIG).expect("the fixture config parses");
        TaskList::of(&config).digest().to_owned()
    })
}

/// A health payload numbered by the fixture's task list, its verdicts one character per byte
/// (mostly the known ones, so that lengths and characters are both tried).
fn numbered(bytes: &[u8]) -> Vec<u8> {
    let verdicts: String = bytes
        .iter()
        .map(|b| ['U', 'D', '-', 'x'][usize::from(b % 4)])
        .collect();
    format!(
        r#"{{"schemaVersion":"1.3","generation":2,"numbered":{{"taskList":"{}","verdicts":"{verdicts}"}}}}"#,
        task_list()
    )
    .into_bytes()
}

fuzz_target!(|bytes: &[u8]| {
    let shared = Shared::new();
    let mut loader = Loader::new(shared, ZoneSettings::default());
    let _ = loader.offer(Payload::Health, bytes);
    let _ = loader.offer(Payload::Config, bytes);
    // And health over a config that loaded, as every update after the first.
    let mut loader = Loader::new(Shared::new(), ZoneSettings::default());
    loader
        .offer(Payload::Config, CONFIG)
        .expect("the fixture config loads");
    let _ = loader.offer(Payload::Health, bytes);
    let _ = loader.offer(Payload::Health, numbered(bytes));
});
