//! `gtm-bench-scale MANIFESTS_DIR OUTPUT_DIR ZONE [RUNS]`
//!
//! Reads every `*.yaml` in MANIFESTS_DIR, then times, each RUNS times (default 3):
//! - `gtm_operator::manifests::load` (YAML parse and schema validation),
//! - `gtm_operator::compile::compile` (the operator's compile step),
//! - `gtm_dnspod::engine::Compiled::build` (the DNS pod's index build on a reload).
//!
//! Writes `config.json` (generation 1) and `health.json` (every task `Up`, by id and by number)
//! to OUTPUT_DIR, as the
//! operator publishes them, and prints one JSON object with the counts, timings and sizes.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use gtm_crds::config::{HealthSnapshot, HealthVerdicts, SCHEMA_VERSION, TaskList};
use gtm_crds::manifest::ManifestValidator;
use gtm_crds::pool::HealthState;
use gtm_dnspod::engine::Compiled;
use gtm_dnspod::zone::ZoneSettings;
use gtm_operator::compile::compile;
use gtm_operator::local::now;
use gtm_operator::manifests::load;

fn read_manifests(dir: &Path) -> Vec<(String, String)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("manifest directory")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("manifest file");
            (p.display().to_string(), text)
        })
        .collect()
}

/// Runs `f` `runs` times; returns the seconds of each run and the last result.
fn timed<T>(runs: usize, mut f: impl FnMut() -> T) -> (Vec<f64>, T) {
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let started = Instant::now();
        let value = f();
        times.push(started.elapsed().as_secs_f64());
        last = Some(value);
    }
    (times, last.expect("at least one run"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [manifests, output, zone] = [0, 1, 2].map(|i| {
        args.get(i)
            .cloned()
            .expect("usage: gtm-bench-scale MANIFESTS_DIR OUTPUT_DIR ZONE [RUNS]")
    });
    let runs: usize = args.get(3).map_or(3, |r| r.parse().expect("RUNS"));
    let sources = read_manifests(Path::new(&manifests));
    let validator = ManifestValidator::new();
    let stamp = now();

    let (load_s, loaded) = timed(runs, || {
        let mut created = HashMap::new();
        load(&sources, "default", &validator, &mut created, &stamp)
    });
    assert!(
        loaded.invalid.is_empty() && loaded.problems.is_empty(),
        "generated manifests refused: {:?} {:?}",
        loaded.invalid.values().next(),
        loaded.problems.first()
    );
    let zones = vec![zone];
    let (compile_s, compilation) = timed(runs, || compile(&loaded.inventory, &zones));

    let mut config = compilation.config.clone();
    config.generation = 1;
    let config_json = config.to_json();
    let health = HealthSnapshot {
        schema_version: SCHEMA_VERSION,
        generation: 1,
        numbered: None,
        tasks: compilation
            .tasks
            .keys()
            .map(|id| (id.clone(), HealthState::Up))
            .collect::<BTreeMap<_, _>>(),
        active: Default::default(),
    }
    .numbered_by(&TaskList::of(&config));
    let health_json = serde_json::to_vec(&health).expect("health serializes");
    let (parse_s, _) = timed(runs, || {
        gtm_dnspod::shared_pools::parse(&config_json, None).expect("config parses")
    });
    let settings = ZoneSettings::default();
    let shared = std::sync::Arc::new(gtm_dnspod::shared_pools::served(config.clone()));
    let verdicts = HealthVerdicts::of(&health);
    let (dnspod_build_s, _) = timed(runs, || {
        Compiled::build(
            shared.clone(),
            &verdicts,
            &settings,
            &Default::default(),
            None,
        )
        .expect("the DNS pod compiles the config")
    });

    let out = Path::new(&output);
    std::fs::create_dir_all(out).expect("output directory");
    std::fs::write(out.join("config.json"), &config_json).expect("config.json");
    std::fs::write(out.join("health.json"), &health_json).expect("health.json");

    let addresses: usize = config.pools.iter().map(|p| p.addresses.len()).sum();
    let report = serde_json::json!({
        "manifest_bytes": sources.iter().map(|(_, t)| t.len()).sum::<usize>(),
        "domains": config.domains.len(),
        "pools": config.pools.len(),
        "addresses": addresses,
        "tasks": compilation.tasks.len(),
        "load_s": load_s,
        "compile_s": compile_s,
        "config_bytes": config_json.len(),
        "health_bytes": health_json.len(),
        "dnspod_parse_s": parse_s,
        "dnspod_build_s": dnspod_build_s,
    });
    println!("{report}");
}
