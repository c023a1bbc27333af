//! Where `gtm-prober` publishes its reports ([`gtm_crds::location`]): files in a directory
//! (local mode), or ConfigMaps in the control cluster (cluster mode), written by server-side
//! apply under the field manager [`FIELD_MANAGER`], the verdicts split into parts.

use std::path::PathBuf;

use anyhow::Context as _;
use gtm_crds::location::{
    Heartbeat, Report, Verdicts, heartbeat_configmap_name, location_selector, report_labels,
    report_of, verdicts_configmap_name, verdicts_part_of,
};
use gtm_crds::parts::{Part, assemble, part_configmap, split};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};

/// Field manager of every write `gtm-prober` makes.
pub const FIELD_MANAGER: &str = "gtm-prober";

/// Where the reports of one location go.
pub(super) enum ReportSink {
    /// Files `<location>.verdicts.json` and `<location>.heartbeat.json` in a directory.
    Dir {
        /// The directory.
        dir: PathBuf,
        /// The location.
        location: String,
    },
    /// ConfigMaps in the control cluster.
    Cluster(Box<ClusterReports>),
}

/// The report ConfigMaps of one location.
pub(super) struct ClusterReports {
    /// The ConfigMaps of the operator's namespace.
    pub(super) api: Api<ConfigMap>,
    /// The namespace.
    pub(super) namespace: String,
    /// The instance.
    pub(super) instance: String,
    /// The location.
    pub(super) location: String,
    /// Most payload bytes per part ([`gtm_crds::parts::MAX_PART_BYTES`]).
    pub(super) part_bytes: usize,
    /// Most parts the verdicts may take.
    pub(super) max_parts: usize,
    /// Parts the verdicts have now (as written, or as found at start).
    pub(super) parts: usize,
}

impl ReportSink {
    /// The verdicts this location published before (after a restart), when readable.
    pub(super) async fn published_verdicts(&mut self) -> anyhow::Result<Option<Verdicts>> {
        let text = match self {
            Self::Dir { dir, location } => {
                let path = dir.join(Report::Verdicts.file_name(location));
                match std::fs::read_to_string(&path) {
                    Ok(text) => text,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
                }
            }
            Self::Cluster(c) => match c.read_parts().await? {
                Some(text) => text,
                None => return Ok(None),
            },
        };
        Ok(Some(Verdicts::from_json(text.as_bytes())?))
    }

    /// Publishes the verdicts whole.
    pub(super) async fn write_verdicts(&mut self, verdicts: &Verdicts) -> anyhow::Result<()> {
        match self {
            Self::Dir { dir, location } => write_file(
                dir,
                &Report::Verdicts.file_name(location),
                &verdicts.to_json(),
            ),
            Self::Cluster(c) => c.write_verdicts(&verdicts.to_json()).await,
        }
    }

    /// Publishes a heartbeat.
    pub(super) async fn write_heartbeat(&mut self, heartbeat: &Heartbeat) -> anyhow::Result<()> {
        match self {
            Self::Dir { dir, location } => write_file(
                dir,
                &Report::Heartbeat.file_name(location),
                &heartbeat.to_json(),
            ),
            Self::Cluster(c) => c.write_heartbeat(&heartbeat.to_json()).await,
        }
    }
}

/// Writes a file atomically: a temporary file in the same directory, then a rename, so that the
/// operator never reads half a report.
fn write_file(dir: &std::path::Path, name: &str, text: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join(name)).with_context(|| format!("renaming {}", tmp.display()))
}

impl ClusterReports {
    /// Reads this location's verdict parts; notes how many there are, so that a shorter write
    /// deletes the rest.
    async fn read_parts(&mut self) -> anyhow::Result<Option<String>> {
        let params =
            ListParams::default().labels(&location_selector(&self.instance, &self.location));
        let list = self
            .api
            .list(&params)
            .await
            .context("listing this location's report ConfigMaps")?;
        let parts: Vec<Part> = list
            .items
            .iter()
            .filter(|cm| report_of(cm).is_some_and(|(_, r)| r == Report::Verdicts))
            .filter_map(verdicts_part_of)
            .collect();
        self.parts = parts.iter().map(|p| p.index + 1).max().unwrap_or(0);
        if parts.is_empty() {
            return Ok(None);
        }
        Ok(Some(assemble(&parts)?))
    }

    async fn write_verdicts(&mut self, text: &str) -> anyhow::Result<()> {
        let parts = split(text, self.part_bytes);
        if parts.len() > self.max_parts {
            anyhow::bail!(
                "the verdicts need {} ConfigMaps, more than --max-verdict-parts {} (the chart's Role names that many; raise prober.maxVerdictParts)",
                parts.len(),
                self.max_parts
            );
        }
        let labels = report_labels(&self.instance, &self.location, Report::Verdicts);
        for part in &parts {
            let name = verdicts_configmap_name(&self.instance, &self.location, part.index);
            let body = part_configmap(
                &name,
                &self.namespace,
                labels.clone(),
                Report::Verdicts.key(),
                part,
            );
            self.apply(&name, &body).await?;
        }
        for index in parts.len()..self.parts {
            let name = verdicts_configmap_name(&self.instance, &self.location, index);
            match self.api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e).with_context(|| format!("deleting ConfigMap {name}")),
            }
        }
        self.parts = parts.len();
        Ok(())
    }

    async fn write_heartbeat(&mut self, text: &str) -> anyhow::Result<()> {
        let name = heartbeat_configmap_name(&self.instance, &self.location);
        let mut body = ConfigMap::default();
        body.metadata.name = Some(name.clone());
        body.metadata.namespace = Some(self.namespace.clone());
        body.metadata.labels = Some(report_labels(
            &self.instance,
            &self.location,
            Report::Heartbeat,
        ));
        body.data = Some([(Report::Heartbeat.key().to_string(), text.to_string())].into());
        self.apply(&name, &body).await
    }

    async fn apply(&self, name: &str, body: &ConfigMap) -> anyhow::Result<()> {
        self.api
            .patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(body),
            )
            .await
            .with_context(|| format!("applying ConfigMap {name}"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use gtm_crds::config::SCHEMA_VERSION;
    use gtm_crds::pool::HealthState;
    use http::{Request, Response};
    use kube::client::Body;
    use serde_json::{Value, json};
    use tower_test::mock;

    use super::*;

    const APPLY: &str = "?&force=true&fieldManager=gtm-prober";

    fn heartbeat() -> Heartbeat {
        Heartbeat {
            schema_version: SCHEMA_VERSION,
            location: "eu".into(),
            labels: Default::default(),
            observed_time: "2026-01-01T00:00:00Z".parse().unwrap(),
            interval_seconds: 10,
        }
    }

    /// Answers the next request with `response`; returns (method, uri, body).
    async fn answer(
        handle: &mut mock::Handle<Request<Body>, Response<Body>>,
        response: Value,
    ) -> (String, String, Value) {
        let (request, send) = tokio::time::timeout(Duration::from_secs(5), handle.next_request())
            .await
            .expect("a request within 5 s")
            .expect("the client is alive");
        let method = request.method().to_string();
        let uri = request.uri().to_string();
        let bytes = request.into_body().collect_bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let response = if response.is_null() {
            body.clone()
        } else {
            response
        };
        send.send_response(
            Response::builder()
                .body(Body::from(serde_json::to_vec(&response).unwrap()))
                .unwrap(),
        );
        (method, uri, body)
    }

    /// Every write of a location touches only its own objects: the verdict parts (applied, the
    /// ones no longer needed deleted) and the heartbeat; reading back lists by its selector.
    #[tokio::test]
    async fn cluster_reports_write_only_the_locations_own_configmaps() {
        let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
        let client = kube::Client::new(service, "default");
        let mut sink = ReportSink::Cluster(Box::new(ClusterReports {
            api: Api::namespaced(client, "gtm"),
            namespace: "gtm".into(),
            instance: "kube-gtm".into(),
            location: "eu".into(),
            part_bytes: 100,
            max_parts: 3,
            parts: 0,
        }));
        let base = "/api/v1/namespaces/gtm/configmaps";
        let server = tokio::spawn(async move {
            // Start: the parts a previous run left (two of them).
            let previous = Verdicts::new("eu", 1, [("ns/t@a#1", HealthState::Up)]);
            let parts = split(&previous.to_json(), 40);
            let items: Vec<ConfigMap> = parts
                .iter()
                .map(|p| {
                    let name = verdicts_configmap_name("kube-gtm", "eu", p.index);
                    let labels = report_labels("kube-gtm", "eu", Report::Verdicts);
                    part_configmap(&name, "gtm", labels, Report::Verdicts.key(), p)
                })
                .collect();
            let count = items.len();
            let (method, uri, _) = answer(
                &mut handle,
                json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {}, "items": items}),
            )
            .await;
            assert_eq!(method, "GET");
            assert_eq!(
                uri,
                format!(
                    "{base}?&labelSelector=gtm.kubegtm.io%2Finstance%3Dkube-gtm%2Cgtm.kubegtm.io%2Flocation%3Deu"
                )
            );
            // The new verdicts take fewer parts: applied, then the rest deleted.
            let (method, uri, body) = answer(&mut handle, Value::Null).await;
            assert_eq!(method, "PATCH");
            assert_eq!(uri, format!("{base}/kube-gtm-verdicts-eu-0{APPLY}"));
            assert_eq!(
                body["metadata"]["labels"]["gtm.kubegtm.io/report"],
                "verdicts"
            );
            assert_eq!(
                body["metadata"]["annotations"]["gtm.kubegtm.io/part"],
                "0/1"
            );
            for index in 1..count {
                let (method, uri, _) = answer(
                    &mut handle,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "metadata": {}}),
                )
                .await;
                assert_eq!(method, "DELETE");
                assert_eq!(uri, format!("{base}/kube-gtm-verdicts-eu-{index}?"));
            }
            let (method, uri, body) = answer(&mut handle, Value::Null).await;
            assert_eq!(method, "PATCH");
            assert_eq!(uri, format!("{base}/kube-gtm-location-eu{APPLY}"));
            assert_eq!(body["metadata"]["labels"]["gtm.kubegtm.io/location"], "eu");
            assert!(
                body["data"]["heartbeat.json"]
                    .as_str()
                    .unwrap()
                    .contains("2026-01-01")
            );
            count
        });
        let before = sink.published_verdicts().await.unwrap().unwrap();
        assert_eq!(before.generation, 1);
        sink.write_verdicts(&Verdicts::new("eu", 2, []))
            .await
            .unwrap();
        sink.write_heartbeat(&heartbeat()).await.unwrap();
        assert!(
            server.await.unwrap() > 1,
            "the previous verdicts took several parts"
        );

        // Verdicts beyond the parts allowed are refused before anything is written.
        let mut big = Verdicts::new("eu", 3, []);
        big.down = (0..20).map(|i| format!("ns/t@192.0.2.{i}#443")).collect();
        let err = sink.write_verdicts(&big).await.unwrap_err().to_string();
        assert!(err.contains("more than --max-verdict-parts 3"), "{err}");
    }

    #[tokio::test]
    async fn files_are_written_whole_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = ReportSink::Dir {
            dir: dir.path().join("locations"),
            location: "eu".into(),
        };
        assert_eq!(sink.published_verdicts().await.unwrap(), None);
        let verdicts = Verdicts::new("eu", 3, [("ns/t@a#1", HealthState::Down)]);
        sink.write_verdicts(&verdicts).await.unwrap();
        sink.write_heartbeat(&Heartbeat {
            schema_version: SCHEMA_VERSION,
            location: "eu".into(),
            labels: Default::default(),
            observed_time: "2026-01-01T00:00:00Z".parse().unwrap(),
            interval_seconds: 10,
        })
        .await
        .unwrap();
        assert_eq!(sink.published_verdicts().await.unwrap(), Some(verdicts));
        let mut names: Vec<String> = std::fs::read_dir(dir.path().join("locations"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["eu.heartbeat.json", "eu.verdicts.json"]);
    }
}
