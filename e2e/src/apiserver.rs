//! The real-API-server suite's view of its control planes: etcd and kube-apiserver started as
//! local processes by `scripts/controlplane.sh` (run by `scripts/apiserver-suite.sh`), with RBAC
//! enforced. Two of them stand for two clusters: `main` (the control cluster: CRDs, operator) and
//! `edge` (a cluster running edge components that reach `main` with their own ServiceAccount
//! credentials, from a kubeconfig in a Secret: [`ControlPlane::create_kubeconfig_secret`],
//! [`PodSpec::with_mounted_secrets`]). The suite installs the chart into it with helm and runs `gtm-operator run` and
//! `gtm-dnspod` as processes, each authenticated as the chart's own ServiceAccount with a token
//! from the TokenRequest API and configured from the environment of the chart's Deployment, so
//! that the authorizer checks exactly the chart's roles and the chart's settings reach the
//! binaries as they would in a pod.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{EnvVar, Secret};
use kube::api::{DeleteParams, DynamicObject, ListParams};
use kube::{Api, Client};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use crate::cluster::gtm_resource;
use crate::local::{binary, free_port};

/// The control plane the suite runs against (`GTM_APISERVER_*` variables of
/// `scripts/apiserver-suite.sh`).
#[derive(Clone)]
pub struct ControlPlane {
    /// Its name in `scripts/controlplane.sh` (`main`, or `edge` for a second cluster).
    pub name: String,
    /// The admin kubeconfig (a client certificate in `system:masters`).
    pub kubeconfig: PathBuf,
    /// A client with that kubeconfig.
    pub client: Client,
    /// Where test logs and generated kubeconfigs go (`target/apiserver-tests`).
    pub work_dir: PathBuf,
}

impl ControlPlane {
    /// The control plane `name` when the suite set one up (`GTM_APISERVER=1`), else prints why
    /// the test skips and returns `None`.
    pub async fn get_or_skip(test: &str, name: &str) -> Option<Self> {
        if std::env::var("GTM_APISERVER").as_deref() != Ok("1") {
            println!(
                "apiserver: skipped {test}: no control plane set up (GTM_APISERVER!=1); run scripts/apiserver-suite.sh"
            );
            return None;
        }
        Some(
            Self::connect(name)
                .await
                .expect("control plane from the suite"),
        )
    }

    async fn connect(name: &str) -> Result<Self> {
        let root = repo_root();
        let kubeconfig = root
            .join("target/controlplane")
            .join(name)
            .join("kubeconfig");
        let work_dir = root.join("target/apiserver-tests");
        std::fs::create_dir_all(&work_dir)?;
        let client = client_from(&kubeconfig).await?;
        Ok(Self {
            name: name.to_owned(),
            kubeconfig,
            client,
            work_dir,
        })
    }

    /// Runs `kubectl` (the suite's, built with the control plane) as the admin; fails with its
    /// output when it fails.
    pub async fn kubectl(&self, args: &[&str]) -> Result<String> {
        self.kubectl_result(args).await?.map_err(anyhow::Error::msg)
    }

    /// Runs `kubectl` as the admin: `Ok(stdout)` when it succeeded, `Err(output)` when it
    /// failed (for checks that expect a refusal).
    pub async fn kubectl_result(&self, args: &[&str]) -> Result<Result<String, String>> {
        self.kubectl_with_input(args, "").await
    }

    /// Like [`Self::kubectl_result`], with `input` on kubectl's standard input (`-f -`).
    pub async fn kubectl_with_input(
        &self,
        args: &[&str],
        input: &str,
    ) -> Result<Result<String, String>> {
        let mut child = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running kubectl (is the suite's PATH set?)")?;
        let mut stdin = child.stdin.take().context("kubectl stdin")?;
        stdin.write_all(input.as_bytes()).await?;
        drop(stdin);
        let output = child.wait_with_output().await?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        Ok(if output.status.success() {
            Ok(stdout)
        } else {
            Err(format!(
                "kubectl {} failed: {stdout}{}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            ))
        })
    }

    /// Runs `helm` against this control plane; fails with its output when it fails.
    pub async fn helm(&self, args: &[&str]) -> Result<String> {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.push(format!("--kubeconfig={}", self.kubeconfig.display()));
        crate::cluster::helm(&all).await
    }

    /// Applies the checked-in CRDs server-side, as README tells users to.
    pub async fn apply_crds(&self) -> Result<()> {
        let crds = repo_root().join("charts/kube-gtm/files/crds.yaml");
        self.kubectl(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            &crds.to_string_lossy(),
        ])
        .await?;
        self.kubectl(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/gtmaccessdomains.gtm.kubegtm.io",
            "crd/addresspools.gtm.kubegtm.io",
            "crd/healthchecktemplates.gtm.kubegtm.io",
            "crd/gtmzones.gtm.kubegtm.io",
        ])
        .await?;
        Ok(())
    }

    /// Runs `scripts/controlplane.sh <command> <name>` (`stop-apiserver`, `start-apiserver`).
    pub async fn script(&self, command: &str) -> Result<()> {
        let status = Command::new(repo_root().join("scripts/controlplane.sh"))
            .args([command, &self.name])
            .status()
            .await?;
        ensure!(
            status.success(),
            "controlplane.sh {command} {} failed",
            self.name
        );
        Ok(())
    }

    /// A kubeconfig that authenticates as ServiceAccount `namespace/account` with a fresh token
    /// from the TokenRequest API (`kubectl create token`), written under the work directory.
    /// It is self-contained (the CA embedded), so that it also works from a Secret in another
    /// cluster.
    pub async fn service_account_kubeconfig(
        &self,
        namespace: &str,
        account: &str,
    ) -> Result<PathBuf> {
        let token = self
            .kubectl(&["create", "token", account, "-n", namespace, "--duration=2h"])
            .await?;
        let admin = std::fs::read_to_string(&self.kubeconfig)?;
        let server = yaml_field(&admin, "server:").context("server in the admin kubeconfig")?;
        let ca =
            yaml_field(&admin, "certificate-authority:").context("CA in the admin kubeconfig")?;
        let ca_data = base64(&std::fs::read(&ca).with_context(|| format!("reading {ca}"))?)?;
        let path = self
            .work_dir
            .join(format!("{}-{namespace}-{account}.kubeconfig", self.name));
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n  - name: c\n    cluster: {{server: {server}, certificate-authority-data: {ca_data}}}\n\
                 users:\n  - name: {account}\n    user: {{token: {}}}\n\
                 contexts:\n  - name: c\n    context: {{cluster: c, user: {account}, namespace: {namespace}}}\ncurrent-context: c\n",
                token.trim()
            ),
        )?;
        Ok(path)
    }

    /// Stores the file `kubeconfig` as key `kubeconfig` of Secret `namespace/name` (replacing
    /// one of that name), as README tells users to hand an edge cluster its credentials for
    /// the control cluster.
    pub async fn create_kubeconfig_secret(
        &self,
        namespace: &str,
        name: &str,
        kubeconfig: &Path,
    ) -> Result<()> {
        self.kubectl(&[
            "delete",
            "secret",
            name,
            "-n",
            namespace,
            "--ignore-not-found",
        ])
        .await?;
        let file = format!("--from-file=kubeconfig={}", kubeconfig.display());
        self.kubectl(&["create", "secret", "generic", name, "-n", namespace, &file])
            .await?;
        Ok(())
    }

    /// Whether ServiceAccount `namespace/account` may do `verb` on `resource` in `in_namespace`
    /// (`kubectl auth can-i --as`). `resource` is `kind`, `kind/name`, or `kind/status` for the
    /// status subresource.
    pub async fn can_i(
        &self,
        namespace: &str,
        account: &str,
        verb: &str,
        resource: &str,
        in_namespace: &str,
    ) -> Result<bool> {
        let who = format!("--as=system:serviceaccount:{namespace}:{account}");
        let mut args = vec!["auth", "can-i", verb, "-n", in_namespace, &who];
        match resource.strip_suffix("/status") {
            Some(kind) => args.extend([kind, "--subresource=status"]),
            None => args.push(resource),
        }
        let answer = self.kubectl_result(&args).await?;
        // `can-i` prints yes/no and exits 1 on "no".
        let text = match answer {
            Ok(out) => out,
            Err(out) => out,
        };
        Ok(text.lines().any(|l| l.trim() == "yes"))
    }

    /// Deletes every kube-gtm object in every namespace (the suite's namespaces cannot be
    /// deleted: no controller manager runs to finalize them).
    pub async fn delete_all_gtm_objects(&self) -> Result<()> {
        for kind in [
            "GtmAccessDomain",
            "AddressPool",
            "HealthCheckTemplate",
            "GtmZone",
        ] {
            let all: Api<DynamicObject> = Api::all_with(self.client.clone(), &gtm_resource(kind));
            let Ok(list) = all.list(&ListParams::default()).await else {
                continue; // CRD not installed
            };
            for object in list.items {
                let ns = object.metadata.namespace.clone().unwrap_or_default();
                let name = object.metadata.name.clone().unwrap_or_default();
                let api: Api<DynamicObject> =
                    Api::namespaced_with(self.client.clone(), &ns, &gtm_resource(kind));
                let _ = api.delete(&name, &DeleteParams::default()).await;
            }
        }
        Ok(())
    }
}

/// A kube client from a kubeconfig file.
pub async fn client_from(kubeconfig: &Path) -> Result<Client> {
    let config = kube::config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading {}", kubeconfig.display()))?;
    let config =
        kube::Config::from_custom_kubeconfig(config, &kube::config::KubeConfigOptions::default())
            .await?;
    Ok(Client::try_from(config)?)
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e has a parent")
        .to_path_buf()
}

/// `bytes` in base64, as Kubernetes writes `data` (by way of the API types' own encoding).
fn base64(bytes: &[u8]) -> Result<String> {
    match serde_json::to_value(k8s_openapi::ByteString(bytes.to_vec()))? {
        serde_json::Value::String(text) => Ok(text),
        other => bail!("ByteString encoded as {other}"),
    }
}

/// The value after `key` on the first line that has it (the admin kubeconfig is ours).
fn yaml_field(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .map(|v| v.trim().to_owned())
}

/// Which binary of the chart a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// `gtm-operator run`.
    Operator,
    /// `gtm-dnspod` reading the ConfigMaps through the API.
    Dns,
    /// `gtm-operator endpoint-agent` in an edge cluster.
    EndpointAgent,
    /// `gtm-prober`, a probe location reporting through the API.
    Prober,
}

impl Component {
    /// The `app.kubernetes.io/component` label of its Deployment.
    pub fn label(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Dns => "dns",
            Self::EndpointAgent => "endpoint-agent",
            Self::Prober => "prober",
        }
    }

    fn binary(self) -> (&'static str, &'static str) {
        match self {
            Self::Operator | Self::EndpointAgent => ("gtm-operator", "gtm-operator"),
            Self::Dns => ("gtm-dnspod", "gtm-dnspod"),
            Self::Prober => ("gtm-prober", "gtm-prober"),
        }
    }
}

/// What a chart's Deployment tells its container: arguments, environment, ServiceAccount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSpec {
    /// The container's `args`.
    pub args: Vec<String>,
    /// The container's environment, with `fieldRef`s to the pod's namespace and name resolved.
    pub env: BTreeMap<String, String>,
    /// `spec.serviceAccountName`.
    pub service_account: String,
    /// The container's mounts of Secret volumes.
    pub secret_mounts: Vec<SecretMount>,
}

/// A Secret volume mounted into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretMount {
    /// The volume's name.
    pub volume: String,
    /// Where it is mounted in the container.
    pub mount_path: String,
    /// The Secret.
    pub secret: String,
    /// (key, path) of each projected item; empty projects every key under its own name.
    pub items: Vec<(String, String)>,
}

impl PodSpec {
    /// Reads the Deployment of `component` of Helm release `release` in `namespace`.
    pub async fn of_release(
        client: &Client,
        namespace: &str,
        release: &str,
        component: Component,
    ) -> Result<Self> {
        let selector = format!(
            "app.kubernetes.io/instance={release},app.kubernetes.io/component={}",
            component.label()
        );
        let list = Api::<Deployment>::namespaced(client.clone(), namespace)
            .list(&ListParams::default().labels(&selector))
            .await?;
        ensure!(
            list.items.len() == 1,
            "one Deployment matches {selector}, found {}",
            list.items.len()
        );
        Self::from_deployment(&list.items[0], "replica-0")
    }

    /// The spec of `deployment`'s first container, as seen by a pod named `pod_name`.
    pub fn from_deployment(deployment: &Deployment, pod_name: &str) -> Result<Self> {
        let namespace = deployment.metadata.namespace.clone().unwrap_or_default();
        let pod = deployment
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .context("Deployment without a pod template")?;
        let container = pod.containers.first().context("pod without containers")?;
        let mut env = BTreeMap::new();
        for EnvVar {
            name,
            value,
            value_from,
        } in container.env.clone().unwrap_or_default()
        {
            let value = match (value, value_from) {
                (Some(v), _) => v,
                (None, Some(from)) => match from.field_ref.map(|f| f.field_path).as_deref() {
                    Some("metadata.namespace") => namespace.clone(),
                    Some("metadata.name") => pod_name.to_owned(),
                    other => bail!("env {name}: unsupported valueFrom {other:?}"),
                },
                (None, None) => String::new(),
            };
            env.insert(name, value);
        }
        let mut secret_mounts = Vec::new();
        for mount in container.volume_mounts.clone().unwrap_or_default() {
            let secret = pod
                .volumes
                .iter()
                .flatten()
                .find(|v| v.name == mount.name)
                .and_then(|v| v.secret.clone());
            if let Some(secret) = secret {
                secret_mounts.push(SecretMount {
                    volume: mount.name,
                    mount_path: mount.mount_path,
                    secret: secret
                        .secret_name
                        .context("a Secret volume without a name")?,
                    items: secret
                        .items
                        .unwrap_or_default()
                        .into_iter()
                        .map(|i| (i.key, i.path))
                        .collect(),
                });
            }
        }
        Ok(Self {
            args: container.args.clone().unwrap_or_default(),
            env,
            service_account: pod
                .service_account_name
                .clone()
                .context("no serviceAccountName")?,
            secret_mounts,
        })
    }

    /// The same spec with its Secret volumes "mounted" as kubelet would: each Secret of
    /// `namespace` read through `client` and its items written under `dir/<volume>`, and every
    /// environment value under a mount path pointed there instead.
    pub async fn with_mounted_secrets(
        &self,
        client: &Client,
        namespace: &str,
        dir: &Path,
    ) -> Result<Self> {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
        let mut spec = self.clone();
        for mount in &self.secret_mounts {
            let secret = secrets
                .get(&mount.secret)
                .await
                .with_context(|| format!("Secret {namespace}/{}", mount.secret))?;
            let data = secret.data.unwrap_or_default();
            let items = if mount.items.is_empty() {
                data.keys().map(|k| (k.clone(), k.clone())).collect()
            } else {
                mount.items.clone()
            };
            let local = dir.join(&mount.volume);
            std::fs::create_dir_all(&local)?;
            for (key, path) in items {
                let value = data
                    .get(&key)
                    .with_context(|| format!("key {key} of Secret {}", mount.secret))?;
                std::fs::write(local.join(&path), &value.0)?;
            }
            for value in spec.env.values_mut() {
                if let Some(rest) = value.strip_prefix(&mount.mount_path) {
                    *value = format!("{}{rest}", local.display());
                }
            }
        }
        Ok(spec)
    }

    /// The same spec for another replica (its `POD_NAME`).
    pub fn replica(&self, pod_name: &str) -> Self {
        let mut spec = self.clone();
        if spec.env.contains_key("POD_NAME") {
            spec.env.insert("POD_NAME".into(), pod_name.into());
        }
        spec
    }
}

/// A kube-gtm binary running as a process with a chart's pod spec; killed on drop.
pub struct GtmProcess {
    /// What it runs.
    pub component: Component,
    /// Its `/metrics`, `/healthz`, `/readyz`.
    pub http: SocketAddr,
    /// Where a DNS process answers (UDP and TCP); `None` for the operator.
    pub dns: Option<SocketAddr>,
    /// Its log file.
    pub log: PathBuf,
    spec: PodSpec,
    kubeconfig: PathBuf,
    child: Child,
}

impl GtmProcess {
    /// Starts `component` with `spec`, authenticated by `kubeconfig`. The listen addresses are
    /// the only settings changed (a pod has its own network namespace; processes share one):
    /// free ports on 127.0.0.1.
    pub fn start(
        component: Component,
        spec: &PodSpec,
        kubeconfig: &Path,
        log: &Path,
    ) -> Result<Self> {
        let http = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let dns = (component == Component::Dns)
            .then(|| free_port().map(|p| SocketAddr::from(([127, 0, 0, 1], p))))
            .transpose()?;
        Self::spawn(component, spec, kubeconfig, log, http, dns)
    }

    fn spawn(
        component: Component,
        spec: &PodSpec,
        kubeconfig: &Path,
        log: &Path,
        http: SocketAddr,
        dns: Option<SocketAddr>,
    ) -> Result<Self> {
        let (package, name) = component.binary();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let mut command = Command::new(binary(package, name)?);
        command
            .env_clear()
            .args(&spec.args)
            .envs(&spec.env)
            .env("KUBECONFIG", kubeconfig)
            .env("GTM_HTTP_LISTEN", http.to_string())
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .kill_on_drop(true);
        if let Some(dns) = dns {
            command.env("GTM_DNS_LISTEN", dns.to_string());
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Self {
            component,
            http,
            dns,
            log: log.to_owned(),
            spec: spec.clone(),
            kubeconfig: kubeconfig.to_owned(),
            child,
        })
    }

    /// Its process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// `kill -9`: no clean shutdown, no Lease released.
    pub async fn kill9(&mut self) -> Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }

    /// SIGTERM and wait: the clean shutdown a pod gets.
    pub async fn terminate(&mut self) -> Result<()> {
        if let Some(pid) = self.child.id() {
            let status = Command::new("kill").arg(pid.to_string()).status().await?;
            ensure!(status.success(), "kill {pid}");
        }
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .context("process did not stop within 30 s of SIGTERM")??;
        Ok(())
    }

    /// Starts the same process again on the same ports, as a restarted pod would be.
    pub async fn restart(&mut self) -> Result<()> {
        if self.child.try_wait()?.is_none() {
            self.terminate().await?;
        }
        *self = Self::spawn(
            self.component,
            &self.spec,
            &self.kubeconfig,
            &self.log,
            self.http,
            self.dns,
        )?;
        Ok(())
    }

    /// Fails when the process has exited.
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{:?} exited: {status}\n{}", self.component, self.log_tail());
        }
        Ok(())
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// `GET path` on its HTTP port: (status code, body).
    pub async fn http_get(&self, path: &str) -> Result<(u16, String)> {
        http_get(self.http, path).await
    }

    /// Its `/metrics` text.
    pub async fn metrics(&self) -> Result<String> {
        let (code, body) = self.http_get("/metrics").await?;
        ensure!(code == 200, "/metrics answered {code}");
        Ok(body)
    }
}

/// A minimal HTTP/1.1 GET (`Connection: close`): (status code, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        anyhow::Ok(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .with_context(|| format!("GET {path} on {addr} timed out"))??;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").context("no HTTP header end")?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no status code")?;
    Ok((code, body.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "r-operator", "namespace": "gtm"},
            "spec": {
                "selector": {},
                "template": {"spec": {
                    "serviceAccountName": "r-operator",
                    "containers": [{
                        "name": "operator",
                        "args": ["run"],
                        "env": [
                            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                            {"name": "GTM_ZONES", "value": "gtm.example.com"}
                        ]
                    }]
                }}
            }
        }))
        .unwrap()
    }

    #[test]
    fn a_deployment_gives_args_env_and_service_account() {
        let spec = PodSpec::from_deployment(&deployment(), "op-a").unwrap();
        assert_eq!(spec.args, ["run"]);
        assert_eq!(spec.service_account, "r-operator");
        assert_eq!(spec.env["POD_NAMESPACE"], "gtm");
        assert_eq!(spec.env["POD_NAME"], "op-a");
        assert_eq!(spec.env["GTM_ZONES"], "gtm.example.com");
        assert_eq!(spec.replica("op-b").env["POD_NAME"], "op-b");
    }

    #[test]
    fn unknown_field_references_are_refused() {
        let mut d = deployment();
        let env = d
            .spec
            .as_mut()
            .unwrap()
            .template
            .spec
            .as_mut()
            .unwrap()
            .containers[0]
            .env
            .as_mut()
            .unwrap();
        env[2] = serde_json::from_value(
            json!({"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}),
        )
        .unwrap();
        assert!(PodSpec::from_deployment(&d, "p").is_err());
    }

    #[test]
    fn secret_volumes_of_the_container_are_found() {
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "e-dns", "namespace": "gtm"},
            "spec": {
                "selector": {},
                "template": {"spec": {
                    "serviceAccountName": "e-dns",
                    "containers": [{
                        "name": "dns",
                        "env": [{"name": "GTM_KUBECONFIG", "value": "/var/run/control/kubeconfig"}],
                        "volumeMounts": [
                            {"name": "control", "mountPath": "/var/run/control", "readOnly": true},
                            {"name": "geoip", "mountPath": "/var/lib/geoip"}
                        ]
                    }],
                    "volumes": [
                        {"name": "geoip", "configMap": {"name": "geo"}},
                        {"name": "control", "secret": {"secretName": "ctl", "items": [{"key": "kubeconfig", "path": "kubeconfig"}]}}
                    ]
                }}
            }
        }))
        .unwrap();
        let spec = PodSpec::from_deployment(&d, "p").unwrap();
        assert_eq!(
            spec.secret_mounts,
            [SecretMount {
                volume: "control".into(),
                mount_path: "/var/run/control".into(),
                secret: "ctl".into(),
                items: vec![("kubeconfig".into(), "kubeconfig".into())],
            }]
        );
    }

    #[test]
    fn base64_is_the_api_encoding() {
        assert_eq!(base64(b"kube-gtm").unwrap(), "a3ViZS1ndG0=");
    }

    #[test]
    fn kubeconfig_fields_are_read() {
        let text = "clusters:\n  - name: m\n    cluster:\n      server: https://127.0.0.1:6443\n      certificate-authority: /x/ca.crt\n";
        assert_eq!(
            yaml_field(text, "server:").unwrap(),
            "https://127.0.0.1:6443"
        );
        assert_eq!(
            yaml_field(text, "certificate-authority:").unwrap(),
            "/x/ca.crt"
        );
        assert_eq!(yaml_field(text, "token:"), None);
    }
}
