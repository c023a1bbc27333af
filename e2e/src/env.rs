//! What `scripts/e2e.sh` tells the tests about the cluster it set up (`GTM_E2E_*` variables).

use std::net::SocketAddr;

/// The installation under test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct E2eEnv {
    /// Helm release name.
    pub release: String,
    /// Namespace of the release (operator, DNS pods, their ConfigMaps).
    pub namespace: String,
    /// Where DNS is reachable from the test host (the kind port mapping).
    pub dns: SocketAddr,
    /// The kube-gtm image loaded into the cluster (backends run it too).
    pub image: String,
    /// `helm install`'s chart and value arguments, reused by `helm upgrade`.
    pub chart_args: Vec<String>,
}

impl E2eEnv {
    /// Reads the environment through `var`. `Ok(None)` when `GTM_E2E` is not `1`: the test is not
    /// running under `make e2e` and should skip.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Option<Self>> {
        if var("GTM_E2E").as_deref() != Some("1") {
            return Ok(None);
        }
        let get = |name: &str, default: &str| {
            var(name)
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        let dns = get("GTM_E2E_DNS", "127.0.0.1:30053");
        Ok(Some(Self {
            release: get("GTM_E2E_RELEASE", "kube-gtm"),
            namespace: get("GTM_E2E_NAMESPACE", "kube-gtm"),
            dns: dns
                .parse()
                .map_err(|e| anyhow::anyhow!("GTM_E2E_DNS={dns}: {e}"))?,
            image: get("GTM_E2E_IMAGE", "kube-gtm:e2e"),
            chart_args: get("GTM_E2E_CHART_ARGS", "charts/kube-gtm")
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
        }))
    }

    /// Reads the process environment; prints the skip line and returns `None` outside `make e2e`.
    pub fn get_or_skip(test: &str) -> Option<Self> {
        match Self::from_vars(|name| std::env::var(name).ok()) {
            Ok(Some(env)) => Some(env),
            Ok(None) => {
                println!("e2e: skipped {test}: no cluster set up (GTM_E2E!=1); run `make e2e`");
                None
            }
            Err(error) => panic!("bad e2e environment: {error:#}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn without_gtm_e2e_the_tests_skip() {
        assert_eq!(E2eEnv::from_vars(vars(&[])).unwrap(), None);
        assert_eq!(E2eEnv::from_vars(vars(&[("GTM_E2E", "0")])).unwrap(), None);
    }

    #[test]
    fn defaults_match_scripts_e2e_sh() {
        let env = E2eEnv::from_vars(vars(&[("GTM_E2E", "1")]))
            .unwrap()
            .unwrap();
        assert_eq!(env.dns, "127.0.0.1:30053".parse().unwrap());
        assert_eq!(
            (env.release.as_str(), env.namespace.as_str()),
            ("kube-gtm", "kube-gtm")
        );
        assert_eq!(env.chart_args, ["charts/kube-gtm"]);
    }

    #[test]
    fn values_are_read_and_checked() {
        let env = E2eEnv::from_vars(vars(&[
            ("GTM_E2E", "1"),
            ("GTM_E2E_DNS", "127.0.0.1:40053"),
            (
                "GTM_E2E_CHART_ARGS",
                "charts/kube-gtm --namespace kube-gtm -f v.yaml",
            ),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(env.dns.port(), 40053);
        assert_eq!(env.chart_args.len(), 5);
        assert!(
            E2eEnv::from_vars(vars(&[("GTM_E2E", "1"), ("GTM_E2E_DNS", "localhost")])).is_err()
        );
    }
}
