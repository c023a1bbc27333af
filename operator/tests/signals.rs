//! Signals sent to the real `gtm-operator local` process: SIGHUP reads the manifests again,
//! SIGUSR1 prints the status table, SIGUSR2 is ignored; none of them stops it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The operator in local mode on the examples, killed on drop.
struct Operator {
    child: Child,
    log: mpsc::Receiver<String>,
    table: mpsc::Receiver<String>,
    output: std::path::PathBuf,
}

/// Lines of a pipe, sent to a channel by a thread.
fn lines(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits (bounded) for a line containing `text`.
fn wait_for(lines: &mpsc::Receiver<String>, text: &str) {
    loop {
        match lines.recv_timeout(Duration::from_secs(10)) {
            Ok(line) if line.contains(text) => return,
            Ok(_) => {}
            Err(_) => panic!("no line with {text:?}"),
        }
    }
}

impl Operator {
    fn start() -> Self {
        let output = std::env::temp_dir().join(format!(
            "gtm-operator-signals-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");
        let mut child = Command::new(env!("CARGO_BIN_EXE_gtm-operator"))
            .args(["local", "--manifests", examples, "--output"])
            .arg(&output)
            .args(["--http-listen", "127.0.0.1:0"])
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting gtm-operator");
        let log = lines(child.stderr.take().unwrap());
        let table = lines(child.stdout.take().unwrap());
        wait_for(&log, "local mode started");
        Self {
            child,
            log,
            table,
            output,
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.output);
    }
}

#[test]
fn hup_usr1_and_usr2_leave_local_mode_running() {
    let mut operator = Operator::start();
    // The first pass prints the table; the signals below come after it.
    wait_for(&operator.table, "app");
    operator.signal("HUP");
    wait_for(&operator.log, "SIGHUP: reading the manifests again");
    assert!(operator.is_running(), "SIGHUP stopped the operator");
    operator.signal("USR2");
    wait_for(&operator.log, "SIGUSR2: ignored");
    assert!(operator.is_running(), "SIGUSR2 stopped the operator");
    operator.signal("USR1");
    wait_for(&operator.table, "app");
    assert!(operator.is_running(), "SIGUSR1 stopped the operator");
    // Still following the manifests after all three.
    operator.signal("HUP");
    wait_for(&operator.log, "SIGHUP: reading the manifests again");
    assert!(operator.config_written());
}

impl Operator {
    /// Whether the payload for the DNS pod is there.
    fn config_written(&self) -> bool {
        self.output.join("config.json").is_file()
    }
}
