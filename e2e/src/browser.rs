//! A real browser for the page tests: Debian's headless Chromium, driven over the DevTools
//! protocol (one WebSocket to the browser, a flat session on the page). The product never needs
//! it; `scripts/install-test-tools.sh` installs it for the tests, which fail without it.
//!
//! The flags keep Chromium off the network (no sync, no component updates, no QUIC, no first
//! run), in a new empty profile, without a sandbox (tests run as root) and without a GPU.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

/// The browser binary: `$CHROMIUM`, else `chromium` on the PATH.
fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

/// How long one DevTools call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A headless Chromium showing one page; killed on drop.
pub struct Browser {
    child: Child,
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    session: String,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium on `url` with a window of `width` x `height` pixels.
    pub async fn open(url: &str, width: u32, height: u32) -> Result<Self> {
        let profile = tempfile::tempdir()?;
        let child = Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                &format!("--window-size={width},{height}"),
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (scripts/install-test-tools.sh installs Debian's chromium)",
                    chromium()
                )
            })?;
        let endpoint = devtools_endpoint(profile.path()).await?;
        let (socket, _) = connect_async(endpoint.as_str())
            .await
            .with_context(|| format!("connecting to {endpoint}"))?;
        let mut browser = Self {
            child,
            socket,
            session: String::new(),
            next_id: 0,
            _profile: profile,
        };
        let targets = browser.call("Target.getTargets", json!({})).await?;
        let page = targets["targetInfos"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["type"] == "page")
            .and_then(|t| t["targetId"].as_str())
            .context("Chromium shows no page")?
            .to_string();
        let attached = browser
            .call(
                "Target.attachToTarget",
                json!({"targetId": page, "flatten": true}),
            )
            .await?;
        browser.session = attached["sessionId"]
            .as_str()
            .context("no session id")?
            .to_string();
        Ok(browser)
    }

    /// Sends one DevTools command (to the page once attached) and waits for its result;
    /// events in between are skipped.
    async fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        self.socket.send(Message::text(message.to_string())).await?;
        tokio::time::timeout(CALL_TIMEOUT, async {
            while let Some(frame) = self.socket.next().await {
                let Message::Text(text) = frame? else {
                    continue;
                };
                let reply: Value = serde_json::from_str(text.as_str())?;
                if reply["id"] != json!(id) {
                    continue;
                }
                if let Some(error) = reply.get("error") {
                    bail!("{method}: {error}");
                }
                return Ok(reply["result"].clone());
            }
            bail!("Chromium closed the DevTools connection")
        })
        .await
        .map_err(|_| anyhow!("{method}: no answer within {CALL_TIMEOUT:?}"))?
    }

    /// Evaluates a JavaScript expression in the page; its value as JSON.
    pub async fn eval(&mut self, expression: &str) -> Result<Value> {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true}),
            )
            .await?;
        if let Some(e) = result.get("exceptionDetails") {
            bail!("{expression}: {e}");
        }
        Ok(result["result"]["value"].clone())
    }

    /// Writes a PNG of the page as shown to `path`.
    pub async fn screenshot(&mut self, path: &Path) -> Result<()> {
        let shot = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await?;
        let data = shot["data"].as_str().context("no screenshot data")?;
        let png = base64::engine::general_purpose::STANDARD.decode(data)?;
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }

    /// Fails when Chromium has exited.
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("chromium exited: {status}");
        }
        Ok(())
    }
}

/// The browser's DevTools WebSocket, from the `DevToolsActivePort` file Chromium writes into
/// its profile (the port it picked, then the path).
async fn devtools_endpoint(profile: &Path) -> Result<String> {
    let file = profile.join("DevToolsActivePort");
    for _ in 0..300 {
        if let Ok(text) = std::fs::read_to_string(&file) {
            let mut lines = text.lines();
            if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                return Ok(format!("ws://127.0.0.1:{port}{path}"));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(
        "Chromium wrote no {} within 30 s (is {} installed and runnable?)",
        file.display(),
        chromium()
    )
}
