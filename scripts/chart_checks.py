#!/usr/bin/env python3
"""Assertions on a rendered kube-gtm chart (called by scripts/test-chart.sh).

usage: chart_checks.py PROFILE RENDERED.yaml
  PROFILE: default | all-features | kind | edge (which values produced the render)

Splits the render into objects and:
- writes the objects kubernetes-validate knows to RENDERED.k8s.yaml and prints the kinds it
  skipped (Prometheus Operator CRDs), after checking those structurally here;
- checks the CRDs against charts/kube-gtm/files/crds.yaml (drift), the env vars against the
  flags documented in docs/configuration.md (the contract with the binaries), the hardening,
  probes, Service, RBAC verbs, PDB, spread, ServiceMonitor and PrometheusRule, and the Grafana
  dashboard ConfigMap (its label, its JSON, a query in every panel; e2e/src/dashboard.rs checks
  the metric names against the binaries); the edge profile: DNS pods only, reading the control
  cluster through the mounted kubeconfig, no CRDs, no operator, no RBAC.
Ends with the line "N passed, N failed" and exits 1 on any failure.
"""

import copy
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "kube-gtm"
PROMETHEUS_OPERATOR_GROUP = "monitoring.coreos.com/"

results = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    if ok:
        results["passed"] += 1
        print(f"ok   {name}")
    else:
        results["failed"] += 1
        print(f"FAIL {name}{': ' + detail if detail else ''}")


def documented_env(section_title):
    """Env vars of one binary's flag table in docs/configuration.md."""
    text = (ROOT / "docs" / "configuration.md").read_text()
    start = text.index(section_title)
    rest = text[start + len(section_title):]
    # The table ends at the next heading or the next paragraph after it.
    table = []
    for line in rest.splitlines()[1:]:
        if line.startswith("#"):
            break
        if line.startswith("|"):
            table.append(line)
        elif table and line.strip() == "":
            break
    names = set()
    for row in table:
        cells = [c.strip() for c in row.strip("|").split("|")]
        if len(cells) < 2:
            continue
        prev = None
        for token in re.findall(r"`([A-Z_][A-Z0-9_]*)`", cells[1]):
            if token.startswith("_") and prev:
                token = prev.rsplit("_", 1)[0] + token  # `GTM_SOA_REFRESH` / `_RETRY`
            names.add(token)
            prev = token
    return names


def load(path):
    docs = [d for d in yaml.safe_load_all(Path(path).read_text()) if d]
    return docs


def by_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def one(docs, kind, name_suffix):
    found = [d for d in by_kind(docs, kind) if d["metadata"]["name"].endswith(name_suffix)]
    return found[0] if len(found) == 1 else None


def container(deploy):
    return deploy["spec"]["template"]["spec"]["containers"][0]


def env_names(c):
    return [e["name"] for e in c.get("env", [])]


def env_value(c, name):
    for e in c.get("env", []):
        if e["name"] == name:
            return e.get("value")
    return None


def rules_set(rules):
    """Rules as a comparable set of (group, resource, verb, resourceNames) tuples."""
    out = set()
    for r in rules:
        names = tuple(sorted(r.get("resourceNames", [])))
        for g in r.get("apiGroups", []):
            for res in r.get("resources", []):
                for v in r.get("verbs", []):
                    out.add((g, res, v, names))
    return out


def expand(group, resources, verbs, names=()):
    return {(group, r, v, tuple(sorted(names))) for r in resources for v in verbs}


CRD_KINDS = ["gtmaccessdomains", "addresspools", "healthchecktemplates", "gtmzones"]
RECONCILE_RULES = (
    expand("gtm.kubegtm.io", CRD_KINDS, ["get", "list", "watch"])
    | expand("gtm.kubegtm.io", [k + "/status" for k in CRD_KINDS], ["patch"])
    | expand("events.k8s.io", ["events"], ["create", "patch"])
    | expand("", ["events"], ["create", "patch"])
)
ENDPOINT_READ_RULES = (
    expand("", ["services"], ["get", "list", "watch"])
    | expand("networking.k8s.io", ["ingresses"], ["get", "list", "watch"])
    | expand("gateway.networking.k8s.io", ["gateways"], ["get", "list", "watch"])
)
CRD_READ_RULES = expand(
    "apiextensions.k8s.io",
    ["customresourcedefinitions"],
    ["get", "list", "watch"],
    [k + ".gtm.kubegtm.io" for k in CRD_KINDS],
)


def check_crds(docs, profile):
    rendered = by_kind(docs, "CustomResourceDefinition")
    expected = [d for d in yaml.safe_load_all((CHART / "files" / "crds.yaml").read_text()) if d]
    check(f"{profile}: one rendered CRD per document of files/crds.yaml", len(rendered) == len(expected),
          f"{len(rendered)} rendered, {len(expected)} in files/crds.yaml")
    for exp in expected:
        name = exp["metadata"]["name"]
        got = next((d for d in rendered if d["metadata"]["name"] == name), None)
        if got is None:
            check(f"{profile}: CRD {name} rendered", False)
            continue
        stripped = copy.deepcopy(got)
        meta = stripped["metadata"]
        annotations = meta.pop("annotations", {}) or {}
        labels = meta.pop("labels", {}) or {}
        for key in ("annotations", "labels"):
            if key in exp["metadata"]:
                meta[key] = exp["metadata"][key]
        check(f"{profile}: CRD {name} equals files/crds.yaml (no drift)", stripped == exp)
        check(f"{profile}: CRD {name} carries the release labels",
              labels.get("app.kubernetes.io/managed-by") == "Helm")
        check(f"{profile}: CRD {name} kept on uninstall",
              annotations.get("helm.sh/resource-policy") == "keep")


def check_hardening(deploy, label, expect_net_raw):
    pod = deploy["spec"]["template"]["spec"]
    psc = pod.get("securityContext", {})
    c = container(deploy)
    sc = c.get("securityContext", {})
    check(f"{label}: pod runAsNonRoot and seccomp RuntimeDefault",
          psc.get("runAsNonRoot") is True and psc.get("seccompProfile", {}).get("type") == "RuntimeDefault")
    check(f"{label}: container hardened (non-root, read-only root fs, no privilege escalation, seccomp)",
          sc.get("runAsNonRoot") is True and sc.get("readOnlyRootFilesystem") is True
          and sc.get("allowPrivilegeEscalation") is False
          and sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", str(sc))
    caps = sc.get("capabilities", {})
    check(f"{label}: all capabilities dropped", caps.get("drop") == ["ALL"], str(caps))
    want_add = ["NET_RAW"] if expect_net_raw else None
    check(f"{label}: capabilities added = {want_add}", caps.get("add") == want_add, str(caps.get("add")))
    check(f"{label}: resources requested", bool(c.get("resources", {}).get("requests")))
    check(f"{label}: liveness on /healthz, readiness on /readyz",
          c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz"
          and c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz")


def check_env_contract(c, label, documented, extra_allowed):
    names = env_names(c)
    unknown = [n for n in names if n not in documented and n not in extra_allowed]
    check(f"{label}: every env var is a documented flag (docs/configuration.md)", not unknown,
          f"undocumented: {unknown}")
    check(f"{label}: no env var set twice", len(names) == len(set(names)), str(names))


def check_workloads(docs, profile):
    op = one(docs, "Deployment", "-operator")
    dns = one(docs, "Deployment", "-dns")
    check(f"{profile}: operator and DNS Deployments rendered", op is not None and dns is not None)
    if not op or not dns:
        return
    icmp = profile == "all-features"
    extra = {"RUST_LOG"} | ({"EXTRA"} if profile == "all-features" else set())

    c = container(op)
    check(f"{profile}: operator runs `gtm-operator run`",
          c.get("command") == ["/usr/local/bin/gtm-operator"] and c.get("args") == ["run"])
    check_env_contract(c, f"{profile}: operator", documented_env("`gtm-operator run`:"), extra)
    for required in ("GTM_ZONES", "POD_NAMESPACE", "GTM_INSTANCE", "GTM_LEADER_ELECTION"):
        check(f"{profile}: operator sets {required}", required in env_names(c))
    kinds = "Service,Ingress,Gateway" if profile == "all-features" else None
    check(f"{profile}: operator discovers endpoints of {kinds}", env_value(c, "GTM_ENDPOINT_KINDS") == kinds)
    check(f"{profile}: operator leader election on", env_value(c, "GTM_LEADER_ELECTION") == "true")
    keys_secret = "gtm-dnssec" if profile == "all-features" else None
    check(f"{profile}: operator reads the DNSSEC keys Secret only when dns.dnssec.keysSecret is set",
          env_value(c, "GTM_DNSSEC_KEYS_SECRET") == keys_secret)
    check(f"{profile}: operator replicas", op["spec"]["replicas"] == (3 if profile == "all-features" else 2))
    check_hardening(op, f"{profile}: operator", expect_net_raw=icmp)
    sysctls = op["spec"]["template"]["spec"]["securityContext"].get("sysctls")
    check(f"{profile}: ping_group_range sysctl only with ICMP checks", bool(sysctls) == icmp)

    c = container(dns)
    check(f"{profile}: DNS pod runs gtm-dnspod", c.get("command") == ["/usr/local/bin/gtm-dnspod"])
    check_env_contract(c, f"{profile}: DNS pod", documented_env("## gtm-dnspod"), extra)
    check(f"{profile}: DNS pod reads ConfigMaps through the API (no GTM_CONFIG_DIR)",
          "GTM_CONFIG_DIR" not in env_names(c))
    check_hardening(dns, f"{profile}: DNS pod", expect_net_raw=False)
    ports = {(p["name"], p["containerPort"], p.get("protocol", "TCP")) for p in c["ports"]}
    check(f"{profile}: DNS pod listens on unprivileged 5353 UDP and TCP",
          {("dns-udp", 5353, "UDP"), ("dns-tcp", 5353, "TCP")} <= ports, str(ports))
    listen = env_value(c, "GTM_DNS_LISTEN")
    want_listen = "0.0.0.0:5353,[::]:5353" if profile == "all-features" else "0.0.0.0:5353"
    check(f"{profile}: GTM_DNS_LISTEN = {want_listen}", listen == want_listen, str(listen))
    spread = dns["spec"]["template"]["spec"].get("topologySpreadConstraints", [])
    check(f"{profile}: DNS pods spread over nodes and zones with the pods' selector",
          {s["topologyKey"] for s in spread} >= {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
          and all(s.get("labelSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component") == "dns"
                  for s in spread))
    strategy = dns["spec"].get("strategy", {})
    check(f"{profile}: DNS rollout never drops below the desired replicas",
          strategy.get("rollingUpdate", {}).get("maxUnavailable") == 0)
    if profile == "all-features":
        check(f"{profile}: geoip database mounted and passed",
              env_value(c, "GTM_GEOIP_DB") == "/var/lib/kube-gtm/geoip/GeoIP2-City.mmdb"
              and any(m["name"] == "geoip" and m.get("readOnly") for m in c.get("volumeMounts", [])))
        check(f"{profile}: image pinned by digest", "@sha256:" in c["image"])
    dnssec_mounted = (
        env_value(c, "GTM_DNSSEC_KEYS") == "/var/lib/kube-gtm/dnssec"
        and any(m["name"] == "dnssec-keys" and m.get("readOnly") for m in c.get("volumeMounts", []))
        and any(v.get("secret", {}).get("secretName") == "gtm-dnssec"
                for v in dns["spec"]["template"]["spec"].get("volumes", []))
    )
    check(f"{profile}: DNSSEC keys Secret mounted and passed only when dns.dnssec.keysSecret is set",
          dnssec_mounted == (profile == "all-features"))

    pdbs = {d["metadata"]["name"] for d in by_kind(docs, "PodDisruptionBudget")}
    check(f"{profile}: PodDisruptionBudgets for both workloads",
          any(n.endswith("-dns") for n in pdbs) and any(n.endswith("-operator") for n in pdbs), str(pdbs))


def report_rules(instance, location, parts):
    """What a probe location may do: read and create ConfigMaps, change or delete only its own
    reports, by name."""
    names = [f"{instance}-location-{location}"] + [f"{instance}-verdicts-{location}-{i}" for i in range(parts)]
    return (expand("", ["configmaps"], ["get", "list", "watch", "create"])
            | expand("", ["configmaps"], ["patch", "delete"], names))


def check_prober(docs, profile, edge):
    """The gtm-prober Deployment: rendered only when enabled, with documented flags, hardened; in
    edge mode reading the control cluster through the mounted kubeconfig."""
    prober = one(docs, "Deployment", "-prober")
    enabled = profile in ("all-features", "edge")
    check(f"{profile}: prober Deployment only when prober.enabled", (prober is not None) == enabled)
    if not prober:
        return
    c = container(prober)
    pod = prober["spec"]["template"]["spec"]
    check(f"{profile}: prober runs gtm-prober", c.get("command") == ["/usr/local/bin/gtm-prober"])
    check_env_contract(c, f"{profile}: prober", documented_env("## gtm-prober"), {"RUST_LOG"})
    check_hardening(prober, f"{profile}: prober", expect_net_raw=profile == "all-features")
    check(f"{profile}: prober reads ConfigMaps through the API (no GTM_CONFIG_DIR)",
          "GTM_CONFIG_DIR" not in env_names(c))
    check(f"{profile}: one prober replica, replaced (never two writers of one location)",
          prober["spec"]["replicas"] == 1 and prober["spec"]["strategy"]["type"] == "Recreate")
    location = "control" if profile == "all-features" else "eu"
    check(f"{profile}: prober location {location}", env_value(c, "GTM_LOCATION") == location)
    labels = "asn=64500,region=us" if profile == "all-features" else "region=eu"
    check(f"{profile}: prober labels", env_value(c, "GTM_LOCATION_LABELS") == labels,
          str(env_value(c, "GTM_LOCATION_LABELS")))
    if edge:
        check(f"{profile}: prober: no token of the edge cluster mounted", pod.get("automountServiceAccountToken") is False)
        mount = {m["name"]: m for m in c.get("volumeMounts", [])}.get("control-kubeconfig", {})
        volume = {v["name"]: v for v in pod.get("volumes", [])}.get("control-kubeconfig", {})
        check(f"{profile}: prober reads the control cluster with its own account's mounted kubeconfig",
              mount.get("readOnly") is True
              and env_value(c, "GTM_KUBECONFIG") == mount.get("mountPath", "?") + "/kubeconfig"
              and volume.get("secret", {}).get("secretName") == "kube-gtm-prober-eu"
              and env_value(c, "GTM_NAMESPACE") == "kube-gtm")
    else:
        check(f"{profile}: prober uses its ServiceAccount in this cluster",
              pod.get("automountServiceAccountToken") is True and "GTM_KUBECONFIG" not in env_names(c))


def check_prober_access(docs, profile):
    """Roles of probe locations: the in-cluster prober's and proberAccess's, each exactly its own."""
    objects = [d for d in docs
               if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "prober-access"]
    if profile != "all-features":
        check(f"{profile}: no prober access unless enabled", not objects, str([d["metadata"]["name"] for d in objects]))
        return
    roles = {d["metadata"]["labels"]["gtm.kubegtm.io/location"]: d for d in by_kind(objects, "Role")}
    check(f"{profile}: a Role per probe location", sorted(roles) == ["ap-south", "control", "eu"], str(sorted(roles)))
    for location, parts in (("control", 2), ("eu", 4), ("ap-south", 4)):
        role = roles.get(location)
        want = report_rules("e2e-all", location, parts)
        check(f"{profile}: location {location} reads ConfigMaps and changes only its own reports",
              role is not None and rules_set(role["rules"]) == want,
              str(rules_set(role["rules"]) ^ want) if role else "missing")
    bindings = {d["metadata"]["labels"]["gtm.kubegtm.io/location"]: d for d in by_kind(objects, "RoleBinding")}
    check(f"{profile}: the in-cluster prober's Role is bound to its ServiceAccount",
          [s["name"] for s in bindings.get("control", {}).get("subjects", [])] == ["kube-gtm-prober"])
    accounts = sorted(d["metadata"]["name"] for d in by_kind(objects, "ServiceAccount"))
    check(f"{profile}: proberAccess: one ServiceAccount per location",
          accounts == ["kube-gtm-prober-ap-south", "kube-gtm-prober-eu"], str(accounts))
    tokens = sorted(t["metadata"]["annotations"]["kubernetes.io/service-account.name"]
                    for t in by_kind(objects, "Secret") if t["type"] == "kubernetes.io/service-account-token")
    check(f"{profile}: proberAccess: a token Secret per location account", tokens == accounts, str(tokens))


def check_services(docs, profile):
    svc = one(docs, "Service", "-dns")
    check(f"{profile}: DNS Service rendered", svc is not None)
    if not svc:
        return
    spec = svc["spec"]
    want_type = {"default": "LoadBalancer", "all-features": "LoadBalancer", "kind": "NodePort"}[profile]
    check(f"{profile}: DNS Service type {want_type}", spec["type"] == want_type, spec["type"])
    ports = {(p["port"], p["protocol"], p["targetPort"]) for p in spec["ports"]}
    check(f"{profile}: DNS Service maps 53/UDP and 53/TCP to the pod's port",
          ports == {(53, "UDP", "dns-udp"), (53, "TCP", "dns-tcp")}, str(ports))
    if profile == "kind":
        check(f"{profile}: fixed node port 30053 for UDP and TCP (kind-config.yaml)",
              {p.get("nodePort") for p in spec["ports"]} == {30053})
    if profile == "all-features":
        check(f"{profile}: DNS Service annotations from values",
              svc["metadata"].get("annotations", {}).get("service.beta.kubernetes.io/aws-load-balancer-type") == "nlb")
    metrics = [d for d in by_kind(docs, "Service") if d["metadata"]["name"].endswith("-metrics")]
    components = 3 if profile == "all-features" else 2
    check(f"{profile}: one metrics Service per component", len(metrics) == components, str(len(metrics)))
    op = one(docs, "Deployment", "-operator")
    annotations = op["spec"]["template"]["metadata"].get("annotations", {}) if op else {}
    check(f"{profile}: pods carry Prometheus scrape annotations",
          annotations.get("prometheus.io/scrape") == "true" and annotations.get("prometheus.io/path") == "/metrics")


def check_rbac(docs, profile):
    for d in docs:
        if d.get("kind") in ("Role", "ClusterRole"):
            for r in d.get("rules", []):
                flat = r.get("apiGroups", []) + r.get("resources", []) + r.get("verbs", [])
                check(f"{profile}: {d['kind']} {d['metadata']['name']} has no wildcard", "*" not in flat)
                # The one exception: `get` on the DNSSEC keys Secret by name (checked below).
                keys_get = (r.get("verbs") == ["get"] and r.get("resourceNames") == ["gtm-dnssec"]
                            and d["metadata"]["name"].endswith("-operator-payload"))
                check(f"{profile}: {d['kind']} {d['metadata']['name']} grants nothing on secrets"
                      " but `get` on the DNSSEC keys Secret",
                      "secrets" not in r.get("resources", []) or keys_get)
    crds = one(docs, "ClusterRole", "-operator-crds")
    check(f"{profile}: operator reads only its CRDs, by name",
          crds is not None and rules_set(crds["rules"]) == CRD_READ_RULES)
    payload = one(docs, "Role", "-operator-payload")
    expected_payload = (expand("", ["configmaps"], ["get", "list", "watch", "create", "patch", "delete"])
                        | expand("events.k8s.io", ["events"], ["create"]))
    if profile == "all-features":
        expected_payload |= expand("", ["secrets"], ["get"], ["gtm-dnssec"])
    lease = "gtm-leader" if profile == "all-features" else None
    if payload:
        lease_rules = {r for r in rules_set(payload["rules"]) if r[0] == "coordination.k8s.io"}
        lease_name = next((r[3][0] for r in lease_rules if r[3]), None)
        if lease:
            check(f"{profile}: lease name {lease}", lease_name == lease, str(lease_name))
        expected_payload |= expand("coordination.k8s.io", ["leases"], ["create"])
        expected_payload |= expand("coordination.k8s.io", ["leases"], ["get", "patch"], [lease_name or ""])
    check(f"{profile}: operator's own-namespace Role: ConfigMaps, Events, its Lease and the keys Secret by name only",
          payload is not None and rules_set(payload["rules"]) == expected_payload,
          str(rules_set(payload["rules"]) ^ expected_payload) if payload else "missing")
    dns_role = one(docs, "Role", "-dns")
    check(f"{profile}: DNS pods only read ConfigMaps",
          dns_role is not None
          and rules_set(dns_role["rules"]) == expand("", ["configmaps"], ["get", "list", "watch"]))
    edge_objects = [d for d in docs
                    if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "edge-access"]
    if profile == "all-features":
        accounts = sorted(d["metadata"]["name"] for d in by_kind(edge_objects, "ServiceAccount"))
        check(f"{profile}: edgeAccess: one ServiceAccount per edge and per endpoint agent", accounts == [
            "kube-gtm-agent-eu", "kube-gtm-edge-eu", "kube-gtm-edge-us"], str(accounts))
        tokens = by_kind(edge_objects, "Secret")
        check(f"{profile}: edgeAccess: a token Secret per edge account",
              sorted((t["type"], t["metadata"]["annotations"]["kubernetes.io/service-account.name"]) for t in tokens)
              == [("kubernetes.io/service-account-token", a) for a in accounts])
        accounts = [a for a in accounts if "-edge-" in a]
        reader = one(edge_objects, "Role", "-edge-reader")
        check(f"{profile}: edgeAccess: the edges only read ConfigMaps",
              reader is not None and rules_set(reader["rules"]) == expand("", ["configmaps"], ["get", "list", "watch"]))
        binding = one(edge_objects, "RoleBinding", "-edge-reader")
        check(f"{profile}: edgeAccess: the Role is bound to exactly the edge accounts",
              binding is not None and sorted(s["name"] for s in binding["subjects"]) == accounts
              and binding["roleRef"]["name"] == reader["metadata"]["name"])
        agent_role = one(edge_objects, "Role", "-agent-eu")
        check(f"{profile}: edgeAccess: the eu agent writes its own endpoints ConfigMap only",
              agent_role is not None and rules_set(agent_role["rules"])
              == expand("", ["configmaps"], ["create"])
              | expand("", ["configmaps"], ["get", "patch"], ["e2e-all-endpoints-eu"]),
              str(agent_role and agent_role["rules"]))
        agent_binding = one(edge_objects, "RoleBinding", "-agent-eu")
        check(f"{profile}: edgeAccess: the agent Role is bound to the agent account only",
              agent_binding is not None
              and [s["name"] for s in agent_binding["subjects"]] == ["kube-gtm-agent-eu"])
    else:
        check(f"{profile}: no edge access unless edgeAccess.edges", not edge_objects)
    cluster_op = one(docs, "ClusterRole", "-operator")
    scoped = [d for d in by_kind(docs, "Role") if d["metadata"]["name"].endswith("-operator")]
    if profile == "all-features":
        check(f"{profile}: watchNamespaces gives Roles in exactly those namespaces, no ClusterRole",
              cluster_op is None and sorted(d["metadata"]["namespace"] for d in scoped) == ["apps", "payments"])
        for d in scoped:
            check(f"{profile}: Role in {d['metadata']['namespace']} has the reconcile verbs and reads the endpoint kinds",
                  rules_set(d["rules"]) == RECONCILE_RULES | ENDPOINT_READ_RULES)
    else:
        check(f"{profile}: cluster-wide ClusterRole with exactly the reconcile verbs",
              cluster_op is not None and rules_set(cluster_op["rules"]) == RECONCILE_RULES and not scoped)


OPERATOR_ALERTS = {
    "KubeGtmAddressDown": "gtm_operator_address_up",
    "KubeGtmPoolUnavailable": "gtm_operator_pool_available",
    "KubeGtmFailover": "gtm_operator_failovers_total",
}
DNS_ALERTS = {
    "KubeGtmConfigReloadFailures": "gtm_dnspod_reloads_total{result=\"failure\"",
    "KubeGtmDnsConfigSourceStale": "gtm_dnspod_config_source_stale",
    "KubeGtmDnsPodsNotReady": "kube_deployment_status_replicas_available",
    "KubeGtmDnsPodDown": "up{",
}
ALERTS = OPERATOR_ALERTS | DNS_ALERTS


def check_prometheus_operator(docs, profile):
    """Structural checks of the Prometheus Operator objects kubernetes-validate has no schema for."""
    sms = by_kind(docs, "ServiceMonitor")
    rules = by_kind(docs, "PrometheusRule")
    if profile != "all-features":
        check(f"{profile}: no ServiceMonitor/PrometheusRule unless enabled", not sms and not rules)
        return
    check(f"{profile}: one ServiceMonitor", len(sms) == 1)
    if sms:
        spec = sms[0]["spec"]
        selector = spec.get("selector", {}).get("matchLabels", {})
        services = [d for d in by_kind(docs, "Service")
                    if all(d["metadata"]["labels"].get(k) == v for k, v in selector.items())]
        want = ["dns", "operator", "prober"] if profile == "all-features" else ["dns", "operator"]
        check(f"{profile}: ServiceMonitor selects exactly the metrics Services of the components",
              sorted(s["metadata"]["name"].rsplit("-", 2)[-2] for s in services) == want,
              str([s["metadata"]["name"] for s in services]))
        check(f"{profile}: ServiceMonitor endpoint is the `metrics` port at /metrics",
              [e.get("port") for e in spec.get("endpoints", [])] == ["metrics"]
              and spec["endpoints"][0].get("path") == "/metrics")
        check(f"{profile}: ServiceMonitor labels from values",
              sms[0]["metadata"]["labels"].get("release") == "prometheus")
    check(f"{profile}: one PrometheusRule", len(rules) == 1)
    if rules:
        group = rules[0]["spec"]["groups"][0]
        by_name = {r.get("alert"): r for r in group["rules"]}
        for alert, metric in ALERTS.items():
            r = by_name.get(alert)
            check(f"{profile}: alert {alert} on {metric.rstrip('{')}",
                  r is not None and metric in r["expr"] and r["labels"].get("severity")
                  and r["annotations"].get("summary") and r["labels"].get("team") == "platform")
        check(f"{profile}: additional rules appended", "KubeGtmExtra" in by_name)
        for r in group["rules"]:
            check(f"{profile}: rule {r.get('alert')} has alert and expr keys only where expected",
                  set(r) <= {"alert", "expr", "for", "labels", "annotations"})


def check_edge(docs):
    """An edge release: DNS pods reading the control cluster through the mounted kubeconfig."""
    profile = "edge"
    kinds = sorted({d["kind"] for d in docs})
    check_prober(docs, profile, edge=True)
    for absent in ("CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "Secret"):
        check(f"{profile}: no {absent}", absent not in kinds, str(kinds))
    roles = by_kind(docs, "Role")
    check(f"{profile}: RBAC only for the endpoint agent: read Services and Gateways in apps and web",
          sorted(r["metadata"]["namespace"] for r in roles) == ["apps", "web"]
          and all(r["metadata"]["name"] == "kube-gtm-endpoint-agent" and rules_set(r["rules"])
                  == expand("", ["services"], ["get", "list", "watch"])
                  | expand("gateway.networking.k8s.io", ["gateways"], ["get", "list", "watch"])
                  for r in roles), str(roles))
    bindings = by_kind(docs, "RoleBinding")
    check(f"{profile}: the agent's Roles are bound to its account",
          len(bindings) == 2 and all(b["subjects"] == [{"kind": "ServiceAccount", "name": "kube-gtm-endpoint-agent",
                                                         "namespace": "kube-gtm"}] for b in bindings))
    agent = one(docs, "Deployment", "-endpoint-agent")
    check(f"{profile}: an endpoint agent Deployment", agent is not None)
    if agent:
        c = container(agent)
        check(f"{profile}: the agent runs `gtm-operator endpoint-agent`",
              c.get("command") == ["/usr/local/bin/gtm-operator"] and c.get("args") == ["endpoint-agent"])
        check_env_contract(c, f"{profile}: endpoint agent", documented_env("`gtm-operator endpoint-agent`:"),
                           {"RUST_LOG"})
        check_hardening(agent, f"{profile}: endpoint agent", expect_net_raw=False)
        check(f"{profile}: the agent publishes cluster eu's Services and Gateways of apps and web",
              (env_value(c, "GTM_CLUSTER"), env_value(c, "GTM_ENDPOINT_KINDS"), env_value(c, "GTM_WATCH_NAMESPACES"))
              == ("eu", "Service,Gateway", "apps,web"))
        pod = agent["spec"]["template"]["spec"]
        check(f"{profile}: the agent's control kubeconfig is mounted from its Secret",
              env_value(c, "GTM_CONTROL_KUBECONFIG") == "/var/run/kube-gtm/control/kubeconfig"
              and pod["volumes"][0]["secret"]["secretName"] == "kube-gtm-agent")
    check(f"{profile}: no operator Deployment", one(docs, "Deployment", "-operator") is None)
    check(f"{profile}: three Deployments (DNS, endpoint agent, prober)", len(by_kind(docs, "Deployment")) == 3)
    dns = one(docs, "Deployment", "-dns")
    check(f"{profile}: DNS Deployment rendered", dns is not None)
    if not dns:
        return
    pod = dns["spec"]["template"]["spec"]
    c = container(dns)
    check_env_contract(c, f"{profile}: DNS pod", documented_env("## gtm-dnspod"), {"RUST_LOG"})
    check_hardening(dns, f"{profile}: DNS pod", expect_net_raw=False)
    check(f"{profile}: no token of the edge cluster mounted", pod.get("automountServiceAccountToken") is False)
    check(f"{profile}: --namespace is the control release's namespace", env_value(c, "POD_NAMESPACE") == "kube-gtm")
    check(f"{profile}: --instance is the control release's", env_value(c, "GTM_INSTANCE") == "kube-gtm")
    kubeconfig = env_value(c, "GTM_KUBECONFIG")
    mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mount = mounts.get("control-kubeconfig", {})
    check(f"{profile}: the kubeconfig Secret is mounted read-only where GTM_KUBECONFIG points",
          mount.get("readOnly") is True and kubeconfig == mount.get("mountPath", "?") + "/kubeconfig"
          and volumes.get("control-kubeconfig", {}).get("secret", {}).get("secretName") == "kube-gtm-control",
          f"{kubeconfig} {mount} {volumes}")
    check(f"{profile}: unready after 600 s stale", env_value(c, "GTM_UNREADY_AFTER_STALE_SECONDS") == "600")
    check(f"{profile}: DNS Service rendered", one(docs, "Service", "-dns") is not None)
    metrics = [d["metadata"]["name"] for d in by_kind(docs, "Service") if d["metadata"]["name"].endswith("-metrics")]
    check(f"{profile}: metrics Services for the DNS pods and the prober",
          metrics == ["kube-gtm-dns-metrics", "kube-gtm-prober-metrics"], str(metrics))
    policies = [d["metadata"]["name"] for d in by_kind(docs, "NetworkPolicy")]
    check(f"{profile}: a NetworkPolicy for the DNS pods only", policies == ["kube-gtm-dns"], str(policies))
    rules = by_kind(docs, "PrometheusRule")
    alerts = {r.get("alert") for r in rules[0]["spec"]["groups"][0]["rules"]} if rules else set()
    check(f"{profile}: DNS alerts only", alerts == set(DNS_ALERTS), str(alerts))


GRAFANA_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def dashboard_panels(panels):
    """Every panel of a dashboard, those nested in rows included, rows left out."""
    for p in panels:
        if p.get("type") == "row":
            yield from dashboard_panels(p.get("panels", []))
        else:
            yield p


def check_grafana_dashboard(docs, profile):
    boards = [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-grafana-dashboard")]
    if profile != "all-features":
        check(f"{profile}: no Grafana dashboard unless enabled", not boards)
        return
    check(f"{profile}: one Grafana dashboard ConfigMap", len(boards) == 1)
    if not boards:
        return
    meta = boards[0]["metadata"]
    check(f"{profile}: dashboard ConfigMap carries the sidecar label from values",
          meta.get("labels", {}).get("grafana_dashboard") == "kube-gtm", str(meta.get("labels")))
    check(f"{profile}: dashboard ConfigMap annotations from values",
          meta.get("annotations", {}).get("grafana_folder") == "GTM", str(meta.get("annotations")))
    data = boards[0].get("data", {})
    check(f"{profile}: dashboard ConfigMap holds one .json file", list(data) == ["kube-gtm.json"], str(list(data)))
    try:
        board = json.loads(data.get("kube-gtm.json", ""))
    except json.JSONDecodeError as e:
        check(f"{profile}: dashboard JSON parses", False, str(e))
        return
    check(f"{profile}: dashboard JSON parses", True)
    check(f"{profile}: dashboard equals files/grafana-dashboard.json",
          board == json.loads((CHART / "files" / "grafana-dashboard.json").read_text()))
    check(f"{profile}: dashboard has a fixed uid and a title", board.get("uid") == "kube-gtm" and board.get("title"))
    variables = {v.get("name"): v for v in board.get("templating", {}).get("list", [])}
    ds = variables.get("datasource", {})
    check(f"{profile}: dashboard has a Prometheus `datasource` variable",
          ds.get("type") == "datasource" and ds.get("query") == "prometheus")
    panels = list(dashboard_panels(board.get("panels", [])))
    check(f"{profile}: dashboard has panels", len(panels) > 10, str(len(panels)))
    no_query = [p.get("title") for p in panels
                if not [t for t in p.get("targets", []) if t.get("expr", "").strip()]]
    check(f"{profile}: every dashboard panel has at least one PromQL target", not no_query, str(no_query))
    fixed_source = [p.get("title") for p in panels
                    if p.get("datasource") != GRAFANA_DATASOURCE
                    or any(t.get("datasource") != GRAFANA_DATASOURCE for t in p.get("targets", []))]
    check(f"{profile}: every panel and target queries the `datasource` variable", not fixed_source, str(fixed_source))
    ids = [p.get("id") for p in board.get("panels", []) if p.get("type") == "row"] + [p.get("id") for p in panels]
    check(f"{profile}: dashboard panel ids are unique", len(ids) == len(set(ids)), str(ids))
    off_grid = [p.get("title") for p in panels if p["gridPos"]["x"] + p["gridPos"]["w"] > 24]
    check(f"{profile}: dashboard panels fit the 24-column grid", not off_grid, str(off_grid))


def main():
    profile, rendered = sys.argv[1], sys.argv[2]
    docs = load(rendered)
    known, skipped = [], []
    for d in docs:
        (skipped if d.get("apiVersion", "").startswith(PROMETHEUS_OPERATOR_GROUP) else known).append(d)
    out = Path(rendered).with_suffix(".k8s.yaml")
    out.write_text(yaml.safe_dump_all(known, sort_keys=False))
    for d in skipped:
        print(f"skip kubernetes-validate for {d['kind']}/{d['metadata']['name']}: "
              f"{d['apiVersion']} is a Prometheus Operator CRD (checked structurally below)")
    check(f"{profile}: every object is namespaced to the release or cluster-scoped",
          all(d["metadata"].get("namespace") or d["kind"] in
              ("CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding") for d in docs))
    if profile == "edge":
        check_edge(docs)
    else:
        check_crds(docs, profile)
        check_workloads(docs, profile)
        check_services(docs, profile)
        check_rbac(docs, profile)
        check_prober(docs, profile, edge=False)
        check_prober_access(docs, profile)
        check_prometheus_operator(docs, profile)
        check_grafana_dashboard(docs, profile)
    print(f"chart-checks ({profile} values):")
    print(f"chart-checks: {results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
