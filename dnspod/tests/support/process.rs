//! The `gtm-dnspod` binary as a process on 127.0.0.1, for tests about what only a process has:
//! signals, descriptor limits.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a test waits for a log line.
const LOG_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `gtm-dnspod`, killed on drop.
pub(crate) struct DnsPodProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Where it answers DNS (UDP and TCP).
    pub(crate) dns: SocketAddr,
    /// Its `/metrics`, `/healthz`, `/readyz`.
    pub(crate) http: SocketAddr,
}

impl DnsPodProcess {
    /// Starts `gtm-dnspod` with ephemeral ports and `args`, through `sh -c` with `shell_prefix`
    /// before the command (for example `ulimit -n 64;`), and waits until it listens.
    pub(crate) fn start(shell_prefix: &str, args: &[&str]) -> Self {
        let mut command = format!(
            "{shell_prefix} exec '{}' --dns-listen 127.0.0.1:0 --http-listen 127.0.0.1:0",
            env!("CARGO_BIN_EXE_gtm-dnspod")
        );
        for arg in args {
            command.push_str(&format!(" '{arg}'"));
        }
        let mut child = Command::new("sh")
            .args(["-c", &command])
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting gtm-dnspod");
        // The log goes to standard output.
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                eprintln!("gtm-dnspod: {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut pod = Self {
            child,
            lines,
            dns: "0.0.0.0:0".parse().unwrap(),
            http: "0.0.0.0:0".parse().unwrap(),
        };
        let listening = pod.wait_for_log("listening");
        pod.dns = field(&listening, "dns=[")
            .split(']')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        pod.http = field(&listening, "http=").parse().unwrap();
        pod
    }

    /// Waits (bounded) for a log line containing `text` and returns it.
    pub(crate) fn wait_for_log(&mut self, text: &str) -> String {
        loop {
            match self.lines.recv_timeout(LOG_TIMEOUT) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(_) => panic!("no log line with {text:?}"),
            }
        }
    }

    /// The process id.
    pub(crate) fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Whether the process still runs.
    pub(crate) fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// The status code of `GET path` on the HTTP endpoint, if it answers within 5 s.
    pub(crate) fn http_status(&self, path: &str) -> Option<u16> {
        let mut stream = TcpStream::connect_timeout(&self.http, Duration::from_secs(5)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        response.split(' ').nth(1)?.parse().ok()
    }
}

impl Drop for DnsPodProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The text after `key` up to the next space.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let start = line.find(key).unwrap_or_else(|| panic!("{key} in {line}")) + key.len();
    line[start..].split(' ').next().unwrap()
}
