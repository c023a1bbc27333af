//! Signals sent to the real `gtm-dnspod` process: SIGHUP reads the config source again,
//! SIGUSR1 logs what is served, SIGUSR2 is ignored; none of them stops the pod.
#![cfg(target_os = "linux")]

mod support;

use hickory_server::proto::rr::RecordType;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::files::*;
use support::fixtures::*;
use support::process::DnsPodProcess;
use support::{data, udp};

const WWW: &str = "www.gtm.example.com.";

#[tokio::test]
async fn hup_usr1_and_usr2_leave_the_pod_answering_and_hup_rereads_the_directory() {
    let tmp = tempdir();
    let base = tmp.as_path().join("base");
    let dir = base.join("payloads");
    std::fs::create_dir_all(&dir).unwrap();
    write_atomically(&dir, "config.json", &www_only(1, "192.0.2.1").to_json());
    let mut pod = DnsPodProcess::start(
        "",
        &[
            "--config-dir",
            dir.to_str().unwrap(),
            "--config-rescan-seconds",
            "3600",
        ],
    );
    pod.wait_for_log("serving new snapshot");
    let answer = |pod: &DnsPodProcess| {
        let dns = pod.dns;
        async move { data(&udp(dns, &support::query(WWW, RecordType::A)).await.answers) }
    };
    assert_eq!(answer(&pod).await, ["192.0.2.1"]);

    // A change no watch sees (the parent replaced) and no rescan comes for: SIGHUP reads it.
    std::fs::rename(&base, tmp.as_path().join("base.old")).unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    write_atomically(&dir, "config.json", &www_only(2, "192.0.2.2").to_json());
    for (signal, log) in [
        (Signal::SIGHUP, "config_generation=2"),
        (Signal::SIGUSR1, "SIGUSR1: serving config_generation=2"),
        (Signal::SIGUSR2, "SIGUSR2: ignored"),
    ] {
        kill(Pid::from_raw(pod.pid()), signal).unwrap();
        pod.wait_for_log(log);
        assert!(pod.is_running(), "{signal} stopped the pod");
        assert_eq!(pod.http_status("/readyz"), Some(200));
    }
    assert_eq!(answer(&pod).await, ["192.0.2.2"]);
    assert!(pod.is_running());
}
