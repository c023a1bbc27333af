"""The `cluster` section of bench.py: cluster mode against a real kube-apiserver.

A control plane of its own (`scripts/controlplane.sh up bench`: etcd + kube-apiserver as local
processes, RBAC on), the CRDs applied server-side, the chart installed with helm, and the release
binaries run as processes with the environment of the chart's Deployments, authenticated with
tokens of the chart's ServiceAccounts (TokenRequest API), as the real-API-server suite
(e2e/tests/apiserver.rs) runs them. Measures:

1. `kubectl apply` of a changed access domain (its pool flipped) to the new DNS answer, and a
   LoadBalancer Service's status change (the status subresource patched, as a cloud's
   controller would) to the new answer of a pool whose `endpointSources` name it;
2. health verdict to answer: a backend killed or restarted; the verdict is the moment the
   leader's probe counter (`gtm_operator_probes_total`, incremented when the probe report that
   carries the verdict is drained) moves, scraped in a loop, so the figure is the cluster-mode
   publish path: batch window, server-side apply of the health ConfigMap, the DNS process's
   watch and swap;
3. leader takeover: two operators, `kill -9` of the leader, time until the other holds the Lease
   and until a change applied right after the kill is answered;
4. apply-to-serving time and RSS of the operator and the DNS process at 20 000 and 100 000
   addresses applied as CRs.

The control plane is always stopped (`down`) on exit. Python standard library only.
"""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

SECTION = "cluster"
CONTROL_PLANE = "bench"
RELEASE = "bench"
NAMESPACE = "gtm-bench"  # the release: operator, DNS, payload ConfigMaps, Lease
APPS = "bench-apps"  # the CRs
ADDRESSES_PER_POOL = 250
LEASE_SECONDS = 15  # the operator's Lease duration (operator/src/cluster/mod.rs)


def run(bench):
    """Runs the section for bench.py's `Bench`; returns its results (or why it was skipped)."""
    h = sys.modules[type(bench).__module__]  # bench.py's helpers, whether run or imported
    cp = ControlPlane(h, bench.args.root)
    reason = cp.unavailable()
    if reason:
        h.log(f"cluster: skipped: {reason}")
        return {"skipped": reason}
    try:
        cp.up()
        gtm = Gtm(h, bench, cp)
        gtm.install()
        result = {"versions": cp.versions()}
        gtm.start_small_config()
        result["apply"] = apply_to_answer(h, gtm, 10 if bench.quick else 40)
        result["service"] = service_status_to_answer(h, gtm, 10 if bench.quick else 40)
        result["verdict"] = verdict_to_answer(h, gtm, 6 if bench.quick else 20)
        result["takeover"] = takeover(h, gtm, 1 if bench.quick else 3)
        sizes = [20_000] if bench.quick else [20_000, 100_000]
        result["scale"] = [scale(h, bench, gtm, n) for n in sizes]
        gtm.stop_all()
        return result
    finally:
        cp.down()


# ---------------------------------------------------------------------------------------------
# The control plane, kubectl and helm


class ControlPlane:
    """`scripts/controlplane.sh`'s control plane `bench`, and kubectl and helm as its admin."""

    def __init__(self, h, root):
        self.h = h
        self.root = root
        self.script = os.path.join(root, "scripts", "controlplane.sh")
        self.kubeconfig = os.path.join(root, "target", "controlplane", CONTROL_PLANE, "kubeconfig")
        self.helm_bin = None
        self.env = None

    def unavailable(self):
        """Why the section cannot run here, or None. Builds the binaries where Go is present."""
        if shutil.which("go") is None and self.run_script("build", check=False).returncode != 0:
            return "no Go toolchain to build etcd and kube-apiserver (scripts/controlplane.sh build)"
        self.run_script("build")
        local_bin = os.path.expanduser("~/.local/bin")
        self.helm_bin = shutil.which("helm") or shutil.which("helm", path=local_bin)
        if self.helm_bin is None:
            self.run_script_file("install-helm.sh", local_bin)
            self.helm_bin = shutil.which("helm", path=local_bin)
        if self.helm_bin is None:
            return "helm could not be installed (scripts/install-helm.sh)"
        bin_dir = self.run_script("bin-dir").stdout.strip()
        self.env = dict(os.environ, KUBECONFIG=self.kubeconfig, PATH=bin_dir + os.pathsep + os.environ["PATH"])
        return None

    def run_script(self, *args, check=True):
        argv = [self.script, *args, CONTROL_PLANE] if args[0] in ("up", "down") else [self.script, *args]
        self.h.record(SECTION, argv)
        out = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
        if check and out.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{out.stdout}{out.stderr}")
        return out

    def run_script_file(self, name, *args):
        argv = [os.path.join(self.root, "scripts", name), *args]
        self.h.record(SECTION, argv)
        subprocess.run(argv, check=True, timeout=600)

    def up(self):
        started = time.monotonic()
        self.run_script("up")
        self.h.log(f"cluster: control plane {CONTROL_PLANE} up in {time.monotonic() - started:.1f} s")

    def down(self):
        out = self.run_script("down", check=False)
        if out.returncode != 0:
            self.h.log(f"cluster: controlplane.sh down failed:\n{out.stdout}{out.stderr}")

    def kubectl(self, *args, timeout=120):
        """kubectl as the admin; its standard output. Fails with its output when it fails."""
        argv = ["kubectl", *args]
        self.h.record(SECTION, argv)
        out = subprocess.run(argv, capture_output=True, text=True, env=self.env, timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{out.stdout}{out.stderr}")
        return out.stdout

    def kubectl_popen(self, *args):
        """kubectl as the admin, in the background; a `Timed` process."""
        argv = ["kubectl", *args]
        self.h.record(SECTION, argv)
        return Timed(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=self.env))

    def helm(self, *args):
        argv = [self.helm_bin, *args, f"--kubeconfig={self.kubeconfig}"]
        self.h.record(SECTION, argv)
        out = subprocess.run(argv, capture_output=True, text=True, env=self.env, timeout=300)
        if out.returncode != 0:
            raise RuntimeError(f"helm {' '.join(args)} failed:\n{out.stdout}{out.stderr}")
        return out.stdout

    def rss_kb(self, component):
        """VmRSS of the control plane's etcd or kube-apiserver."""
        with open(os.path.join(os.path.dirname(self.kubeconfig), f"{component}.pid")) as f:
            return self.h.proc_status(int(f.read().strip()), "VmRSS")

    def versions(self):
        out = json.loads(self.kubectl("version", "-o", "json"))
        return {"kubernetes": out["serverVersion"]["gitVersion"], "helm": self.helm("version", "--short").strip()}

    def lease_holder(self, lease):
        return self.kubectl(
            "get", "lease", lease, "-n", NAMESPACE, "-o", "jsonpath={.spec.holderIdentity}", timeout=10
        ).strip()


class Timed(threading.Thread):
    """A background process and the moment it exited (this thread waits for it)."""

    def __init__(self, proc):
        super().__init__(daemon=True)
        self.proc = proc
        self.ended = None
        self.start()

    def run(self):
        self.proc.wait()
        self.ended = time.monotonic()

    def finish(self, timeout):
        """Waits for the exit; fails with the process's error output when it failed."""
        self.join(timeout)
        if self.ended is None:
            raise RuntimeError(f"{self.proc.args} still running after {timeout} s")
        if self.proc.returncode != 0:
            raise RuntimeError(f"{' '.join(self.proc.args)} failed: {self.proc.stderr.read().decode()}")
        return self.ended


# ---------------------------------------------------------------------------------------------
# The chart's processes


class PodSpec:
    """A chart Deployment's container: args, environment (fieldRefs resolved), ServiceAccount."""

    def __init__(self, deployment):
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        self.args = container.get("args", [])
        self.env = {}
        for var in container.get("env", []):
            ref = var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
            if "value" in var:
                self.env[var["name"]] = var["value"]
            elif ref == "metadata.namespace":
                self.env[var["name"]] = deployment["metadata"]["namespace"]
            elif ref == "metadata.name":
                self.env[var["name"]] = "replica-0"
            else:
                raise RuntimeError(f"env {var['name']}: unsupported valueFrom {ref!r}")
        self.service_account = pod["serviceAccountName"]


class Process:
    """A kube-gtm binary run with a pod spec; `env -i` so that the command line shows it all."""

    def __init__(self, h, binary, spec, kubeconfig, log_path, extra_env):
        self.http_port = h.free_port()
        env = dict(spec.env, KUBECONFIG=kubeconfig, GTM_HTTP_LISTEN=f"127.0.0.1:{self.http_port}", **extra_env)
        argv = ["env", "-i", *(f"{k}={v}" for k, v in sorted(env.items())), binary, *spec.args]
        self.log_path = log_path
        self.proc = h.start(SECTION, argv, stdout=open(log_path, "a"), stderr=subprocess.STDOUT)
        h.wait_until(
            f"{os.path.basename(binary)} ready",
            lambda: self.alive() and h.http_ok(f"http://127.0.0.1:{self.http_port}/readyz"),
            timeout=180, interval=0.1,
        )

    def alive(self):
        if self.proc.poll() is not None:
            with open(self.log_path) as f:
                tail = f.read()[-3000:]
            raise RuntimeError(f"{self.log_path}: exited with {self.proc.returncode}:\n{tail}")
        return True

    def metrics(self, name):
        """Every sample of metric family `name`: {labels text: value}."""
        return metric_samples(self.http_port, name)


def metric_samples(http_port, name):
    import urllib.request  # noqa: PLC0415

    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    samples = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            series, value = line.rsplit(" ", 1)
            samples[series[len(name):]] = float(value)
    return samples


class Gtm:
    """The Helm release, its operator processes (by identity) and one DNS process."""

    def __init__(self, h, bench, cp):
        self.h, self.bench, self.cp = h, bench, cp
        self.operators = {}  # identity -> Process
        self.dns = None
        self.backends = {}
        self.prop_flips = 0  # changes made to the `prop` domain so far

    def install(self):
        cp = self.cp
        crds = os.path.join(cp.root, "charts", "kube-gtm", "files", "crds.yaml")
        cp.kubectl("apply", "--server-side", "--force-conflicts", "-f", crds)
        cp.kubectl(
            "wait", "--for=condition=Established", "--timeout=60s", "crd/gtmaccessdomains.gtm.kubegtm.io",
            "crd/addresspools.gtm.kubegtm.io", "crd/healthchecktemplates.gtm.kubegtm.io",
        )
        chart = os.path.join(cp.root, "charts", "kube-gtm")
        cp.helm(
            "install", RELEASE, chart, "-n", NAMESPACE, "--create-namespace", "--set", f"zones={{{self.h.ZONE}}}",
            "--set", "crds.install=false", "--set", "operator.endpointDiscovery.kinds={Service}",
        )
        cp.kubectl("create", "namespace", APPS)
        self.specs = {c: PodSpec(self.deployment(c)) for c in ("operator", "dns")}
        self.lease = self.specs["operator"].env["GTM_LEASE_NAME"]
        self.kubeconfigs = {c: self.token_kubeconfig(s.service_account) for c, s in self.specs.items()}

    def deployment(self, component):
        selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component={component}"
        listed = self.cp.kubectl("get", "deployments", "-n", NAMESPACE, "-l", selector, "-o", "json")
        items = json.loads(listed)["items"]
        if len(items) != 1:
            raise RuntimeError(f"{len(items)} Deployments match {selector}")
        return items[0]

    def token_kubeconfig(self, account):
        """A kubeconfig authenticating as the chart's ServiceAccount (TokenRequest API)."""
        token = self.cp.kubectl("create", "token", account, "-n", NAMESPACE, "--duration=2h").strip()
        with open(self.cp.kubeconfig) as f:
            admin = f.read()
        server, ca = (next(l.split(k, 1)[1].strip() for l in admin.splitlines() if k in l)
                      for k in ("server:", "certificate-authority:"))
        path = self.bench.path(SECTION, f"{account}.kubeconfig")
        with open(path, "w") as f:
            f.write(
                "apiVersion: v1\nkind: Config\nclusters:\n  - name: c\n"
                f"    cluster: {{server: {server}, certificate-authority: {ca}}}\n"
                f"users:\n  - name: {account}\n    user: {{token: {token}}}\n"
                f"contexts:\n  - name: c\n    context: {{cluster: c, user: {account}, namespace: {NAMESPACE}}}\n"
                "current-context: c\n"
            )
        return path

    def start_operator(self, identity):
        spec = self.specs["operator"]
        self.operators[identity] = Process(
            self.h, os.path.join(self.bench.bin, "gtm-operator"), spec, self.kubeconfigs["operator"],
            self.bench.path(SECTION, f"operator-{identity}.log"), {"POD_NAME": identity},
        )

    def start_dns(self):
        self.dns_port = self.h.free_port()
        # The 1 ms poller queries from one address: response rate limiting (per source prefix)
        # would drop most of its queries, so it is raised far above the poll rate.
        extra = {"GTM_DNS_LISTEN": f"127.0.0.1:{self.dns_port}", "GTM_RRL_RATE": "1000000", "GTM_RRL_BURST": "1000000"}
        self.dns = Process(
            self.h, os.path.join(self.bench.bin, "gtm-dnspod"), self.specs["dns"], self.kubeconfigs["dns"],
            self.bench.path(SECTION, "dns.log"), extra,
        )

    def leader(self):
        """The identity whose `gtm_operator_leader` is 1, when exactly one is."""
        leaders = [i for i, p in self.operators.items() if p.alive() and p.metrics("gtm_operator_leader").get("") == 1]
        return leaders[0] if len(leaders) == 1 else None

    def apply(self, name, text):
        path = self.bench.path(SECTION, "manifests", name)
        with open(path, "w") as f:
            f.write(text)
        self.cp.kubectl("apply", "--server-side", "-n", APPS, "-f", path)
        return path

    def start_small_config(self):
        """The objects of the latency measurements, two operators and a DNS process."""
        h = self.h
        self.backend_port = 15000 + random.randrange(1000)
        self.primary, self.secondary = "127.0.92.1", "127.0.92.2"
        self.backends[self.primary] = h.start_backend(SECTION, self.primary, self.backend_port)
        self.apply(
            "small.yaml",
            h.docs(
                h.pool_yaml("prop-a", "RoundRobin", [("127.0.91.1", 1, 1, None)]),
                h.pool_yaml("prop-b", "RoundRobin", [("127.0.91.2", 1, 1, None)]),
                h.domain_yaml("prop", f"prop.{h.ZONE}", 5, ["prop-a"]),
                h.template_yaml("tcp-fast", 1, 500, 1, 1),
                # Only the first address is checked, so the probe counters are its own.
                "apiVersion: gtm.kubegtm.io/v1alpha1\nkind: AddressPool\nmetadata:\n  name: hc\nspec:\n"
                "  type: IPv4\n  policy: Sequential\n  sequentialMode: Preemptive\n  addresses:\n"
                f"    - value: {self.primary}\n      order: 1\n      healthChecks:\n"
                f"        - template: tcp-fast\n          port: {self.backend_port}\n"
                f"    - value: {self.secondary}\n      order: 2\n",
                h.domain_yaml("hc", f"hc.{h.ZONE}", 5, ["hc"]),
                "apiVersion: gtm.kubegtm.io/v1alpha1\nkind: AddressPool\nmetadata:\n  name: lb\nspec:\n"
                "  type: IPv4\n  endpointSources:\n    - kind: Service\n      name: lb\n",
                h.domain_yaml("lb", f"lb.{h.ZONE}", 5, ["lb"]),
            ),
        )
        self.cp.kubectl(
            "create", "service", "loadbalancer", "lb", "-n", APPS, "--tcp=80:8080",
        )
        set_load_balancer(self.cp, LB_IPS[0])
        for identity in ("op-0", "op-1"):
            self.start_operator(identity)
        self.start_dns()
        h.wait_until("one leader", self.leader, timeout=60, interval=0.2)
        dns = h.Dns(self.dns_port)
        h.wait_answer(dns, f"prop.{h.ZONE}", lambda v: v == ["127.0.91.1"], 90, interval=0.05)
        h.wait_answer(dns, f"hc.{h.ZONE}", lambda v: v == [self.primary], 90, interval=0.05)
        h.wait_answer(dns, f"lb.{h.ZONE}", lambda v: v == [LB_IPS[0]], 90, interval=0.05)
        dns.close()

    def stop_all(self):
        for p in [*self.operators.values(), self.dns]:
            if p is not None:
                self.h.stop(p.proc, timeout=30)
        self.operators, self.dns = {}, None
        for b in self.backends.values():
            self.h.stop(b)
        self.backends = {}


# ---------------------------------------------------------------------------------------------
# 1. kubectl apply to answer


def flip(h, gtm):
    """The `prop` domain moved to its other pool: (manifest, expected answer)."""
    gtm.prop_flips += 1
    odd = gtm.prop_flips % 2
    pool = "prop-b" if odd else "prop-a"
    return h.domain_yaml("prop", f"prop.{h.ZONE}", 5, [pool]), ["127.0.91.2" if odd else "127.0.91.1"]


def apply_to_answer(h, gtm, changes):
    dns = h.Dns(gtm.dns_port)
    path = gtm.bench.path(SECTION, "manifests", "prop.yaml")
    answer_ms, kubectl_ms = [], []
    for _ in range(changes):
        time.sleep(random.uniform(0.05, 0.25))
        text, want = flip(h, gtm)
        with open(path, "w") as f:
            f.write(text)
        t0 = time.monotonic()
        apply = gtm.cp.kubectl_popen("apply", "--server-side", "-n", APPS, "-f", path)
        t1 = h.wait_answer(dns, f"prop.{h.ZONE}", lambda v, w=want: v == w, 30)
        answer_ms.append((t1 - t0) * 1000)
        kubectl_ms.append((apply.finish(60) - t0) * 1000)
    dns.close()
    res = {"changes": changes, "answer_ms": h.summary(answer_ms), "kubectl_ms": h.summary(kubectl_ms)}
    h.log(
        f"cluster: kubectl apply to answer p50 {res['answer_ms']['p50']:.0f} ms, p99 {res['answer_ms']['p99']:.0f} ms"
        f" (kubectl itself p50 {res['kubectl_ms']['p50']:.0f} ms)"
    )
    return res


# The two addresses the `lb` Service's status moves between.
LB_IPS = ("127.0.93.1", "127.0.93.2")


def set_load_balancer(cp, ip, background=False):
    """Sets Service `lb`'s `status.loadBalancer.ingress` to `ip` (the status subresource)."""
    patch = json.dumps({"status": {"loadBalancer": {"ingress": [{"ip": ip}]}}})
    args = ("patch", "service", "lb", "-n", APPS, "--subresource=status", "--type=merge", "-p", patch)
    return cp.kubectl_popen(*args) if background else cp.kubectl(*args)


def service_status_to_answer(h, gtm, changes):
    dns = h.Dns(gtm.dns_port)
    answer_ms, kubectl_ms = [], []
    for i in range(changes):
        time.sleep(random.uniform(0.05, 0.25))
        ip = LB_IPS[(i + 1) % 2]
        t0 = time.monotonic()
        patch = set_load_balancer(gtm.cp, ip, background=True)
        t1 = h.wait_answer(dns, f"lb.{h.ZONE}", lambda v, w=[ip]: v == w, 30)
        answer_ms.append((t1 - t0) * 1000)
        kubectl_ms.append((patch.finish(60) - t0) * 1000)
    dns.close()
    res = {"changes": changes, "answer_ms": h.summary(answer_ms), "kubectl_ms": h.summary(kubectl_ms)}
    h.log(
        f"cluster: Service status to answer p50 {res['answer_ms']['p50']:.0f} ms,"
        f" p99 {res['answer_ms']['p99']:.0f} ms (kubectl itself p50 {res['kubectl_ms']['p50']:.0f} ms)"
    )
    return res


# ---------------------------------------------------------------------------------------------
# 2. Health verdict to answer


class VerdictWatch(threading.Thread):
    """Scrapes the leader's probe counter of `result` in a loop until it moves; the verdict time
    is the middle of the window in which it moved (the scrape before, still unchanged, started
    at its left edge; the scrape that saw the move ended at its right edge)."""

    def __init__(self, http_port, result, before):
        super().__init__(daemon=True)
        self.http_port, self.result, self.before = http_port, result, before
        self.at = self.window = None
        self.stop = False

    def run(self):
        last_start = time.monotonic()
        while not self.stop:
            start = time.monotonic()
            if probe_count(self.http_port, self.result) > self.before:
                end = time.monotonic()
                self.at, self.window = (last_start + end) / 2, end - last_start
                return
            last_start = start
            time.sleep(0.001)


def probe_count(http_port, result):
    samples = metric_samples(http_port, "gtm_operator_probes_total")
    return sum(v for labels, v in samples.items() if f'result="{result}"' in labels)


def verdict_to_answer(h, gtm, trials):
    leader = gtm.operators[h.wait_until("one leader", gtm.leader, timeout=60)]
    dns = h.Dns(gtm.dns_port)
    fqdn = f"hc.{h.ZONE}"
    samples = {"down": [], "up": []}
    fail_ms, windows = [], []
    for i in range(trials):
        down = i % 2 == 0
        time.sleep(random.uniform(0.5, 1.5))
        result = "failure" if down else "success"
        watch = VerdictWatch(leader.http_port, result, probe_count(leader.http_port, result))
        watch.start()
        t0 = time.monotonic()
        if down:
            h.stop(gtm.backends.pop(gtm.primary), sig=signal.SIGKILL)
        else:
            gtm.backends[gtm.primary] = h.start_backend(SECTION, gtm.primary, gtm.backend_port)
        want = [gtm.secondary] if down else [gtm.primary]
        t1 = h.wait_answer(dns, fqdn, lambda v, w=want: v == w, 30)
        watch.join(10)
        watch.stop = True
        if watch.at is None:
            raise RuntimeError(f"the leader's {result} probe counter did not move")
        samples["down" if down else "up"].append((t1 - watch.at) * 1000)
        fail_ms.append((t1 - t0) * 1000)
        windows.append(watch.window * 1000)
    dns.close()
    if gtm.primary not in gtm.backends:
        gtm.backends[gtm.primary] = h.start_backend(SECTION, gtm.primary, gtm.backend_port)
    res = {
        "trials": trials,
        "verdict_ms": h.summary(samples["down"] + samples["up"]),
        "down_ms": h.summary(samples["down"]),
        "up_ms": h.summary(samples["up"]),
        "event_to_answer_ms": h.summary(fail_ms),
        "window_ms": h.summary(windows),
        "settings": "TCP check interval 1 s, timeout 500 ms, failure/success threshold 1",
    }
    h.log(
        f"cluster: health verdict to answer p50 {res['verdict_ms']['p50']:.0f} ms,"
        f" p99 {res['verdict_ms']['p99']:.0f} ms"
        f" (scrape window p50 {res['window_ms']['p50']:.1f} ms)"
    )
    return res


# ---------------------------------------------------------------------------------------------
# 3. Leader takeover


class LeaseWatch(threading.Thread):
    """Polls the Lease's holder with kubectl until it is `want`; the moment is the middle of the
    window between the start of the last poll that saw another holder and the end of the
    first that saw `want`."""

    def __init__(self, cp, lease, want):
        super().__init__(daemon=True)
        self.cp, self.lease, self.want = cp, lease, want
        self.at = self.window = None
        self.stop = False

    def run(self):
        last_start = time.monotonic()
        while not self.stop:
            start = time.monotonic()
            try:
                if self.cp.lease_holder(self.lease) == self.want:
                    end = time.monotonic()
                    self.at, self.window = (last_start + end) / 2, end - last_start
                    return
            except (RuntimeError, subprocess.TimeoutExpired):
                pass  # one failed poll; the next one tells
            last_start = start


def takeover(h, gtm, trials):
    dns = h.Dns(gtm.dns_port)
    path = gtm.bench.path(SECTION, "manifests", "prop.yaml")
    lease_s, answer_s, windows = [], [], []
    for t in range(trials):
        leader = h.wait_until("one leader", gtm.leader, timeout=60)
        holder = gtm.cp.lease_holder(gtm.lease)
        if holder != leader:
            raise RuntimeError(f"the Lease is held by {holder!r}, the leader metric says {leader!r}")
        standby = next(i for i in gtm.operators if i != leader)
        time.sleep(random.uniform(1.0, 3.0))  # kills at random points of the renew schedule
        text, want = flip(h, gtm)
        with open(path, "w") as f:
            f.write(text)
        watch = LeaseWatch(gtm.cp, gtm.lease, standby)
        t0 = time.monotonic()
        h.stop(gtm.operators.pop(leader).proc, sig=signal.SIGKILL)
        watch.start()
        # The change is applied right after the kill: only the new leader can publish it.
        gtm.cp.kubectl("apply", "--server-side", "-n", APPS, "-f", path)
        t1 = h.wait_answer(dns, f"prop.{h.ZONE}", lambda v, w=want: v == w, 4 * LEASE_SECONDS)
        watch.join(4 * LEASE_SECONDS)
        watch.stop = True
        if watch.at is None:
            raise RuntimeError(f"{standby} did not take the Lease")
        lease_s.append(watch.at - t0)
        answer_s.append(t1 - t0)
        windows.append(watch.window * 1000)
        h.log(
            f"cluster: takeover {t + 1}: {standby} held the Lease after {lease_s[-1]:.2f} s"
            f" (poll window {windows[-1]:.0f} ms), change answered after {answer_s[-1]:.2f} s"
        )
        gtm.start_operator(leader)  # back as the standby
    dns.close()
    return {
        "trials": trials,
        "lease_s": lease_s,
        "answer_s": answer_s,
        "window_ms": windows,
        "lease_duration_s": LEASE_SECONDS,
    }


# ---------------------------------------------------------------------------------------------
# 4. Scale


def scale_manifests(h, directory, addresses, files):
    """`addresses` / 250 IPv4 `Weighted` pools of 250 addresses each (10.<hi>.<lo>.1-250, no
    health checks) and one access domain per pool, split into `files` files to apply in
    parallel; returns (paths, domain names with their address prefix)."""
    pools = addresses // ADDRESSES_PER_POOL
    names, parts = [], [[] for _ in range(files)]
    for p in range(pools):
        prefix = f"10.{p >> 8}.{p & 255}."
        addrs = [(f"{prefix}{i + 1}", 1 + i % 5, 1, None) for i in range(ADDRESSES_PER_POOL)]
        parts[p % files] += [
            h.pool_yaml(f"s{p}", "Weighted", addrs),
            h.domain_yaml(f"s{p}", f"s{p}.{h.ZONE}", 30, [f"s{p}"]),
        ]
        names.append((f"s{p}.{h.ZONE}", prefix))
    paths = []
    for i, docs in enumerate(parts):
        path = os.path.join(directory, f"scale-{i}.yaml")
        with open(path, "w") as f:
            f.write(h.docs(*docs))
        paths.append(path)
    return paths, names


def scale(h, bench, gtm, addresses):
    """Fresh processes and an empty namespace, then `addresses` applied as CRs."""
    label = f"{addresses:,}".replace(",", " ")
    timeout = 600 if addresses <= 20_000 else 1500
    gtm.stop_all()
    cp = gtm.cp
    cp.kubectl("delete", "gtmaccessdomains,addresspools,healthchecktemplates", "--all", "-n", APPS, timeout=600)
    cp.kubectl("delete", "configmaps", "-n", NAMESPACE, "-l", "gtm.kubegtm.io/payload", timeout=120)
    gtm.start_operator("op-0")
    gtm.start_dns()
    h.wait_until("a leader", gtm.leader, timeout=60, interval=0.2)
    directory = bench.path(SECTION, f"scale-{addresses}", "x")[:-2]
    paths, names = scale_manifests(h, directory, addresses, 4)
    op, dns_proc = gtm.operators["op-0"], gtm.dns
    h.log(f"cluster: applying {label} addresses ({len(names)} pools and domains) with {len(paths)} parallel kubectl")
    t0 = time.monotonic()
    applies = [cp.kubectl_popen("apply", "--server-side", "-n", APPS, "-f", p) for p in paths]
    dns = h.Dns(gtm.dns_port, timeout=1.0)
    pending = dict(names)
    applied_s = first_s = served_s = None
    deadline = t0 + timeout
    while served_s is None or applied_s is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{label} addresses: {len(pending)} domains not answered within {timeout} s")
        op.alive()
        dns_proc.alive()
        if applied_s is None and all(a.ended is not None for a in applies):
            applied_s = max(a.finish(0) for a in applies) - t0
        for name, prefix in list(pending.items()):
            rc, values = dns.query(name)
            if rc == 0 and values and all(v.startswith(prefix) for v in values):
                del pending[name]
                first_s = first_s or time.monotonic() - t0
        if not pending and served_s is None:
            served_s = time.monotonic() - t0
        time.sleep(0.2)
    dns.close()
    time.sleep(5)  # statuses and events written after the answers
    res = {
        "addresses": addresses,
        "label": label,
        "pools": len(names),
        "kubectl_files": len(paths),
        "applied_s": applied_s,
        "first_answer_s": first_s,
        "served_s": served_s,
        "config_parts": len(
            cp.kubectl("get", "configmaps", "-n", NAMESPACE, "-l", "gtm.kubegtm.io/payload=config", "-o", "name").split()
        ),
        "payload_bytes": {
            re.search(r'payload="([^"]*)"', k).group(1): v for k, v in op.metrics("gtm_operator_payload_bytes").items()
        },
        "operator_rss_kb": h.proc_status(op.proc.pid, "VmRSS"),
        "operator_peak_kb": h.proc_status(op.proc.pid, "VmHWM"),
        "dns_rss_kb": h.proc_status(dns_proc.proc.pid, "VmRSS"),
        "dns_peak_kb": h.proc_status(dns_proc.proc.pid, "VmHWM"),
        "apiserver_rss_kb": cp.rss_kb("kube-apiserver"),
        "etcd_rss_kb": cp.rss_kb("etcd"),
    }
    h.log(
        f"cluster: {label} addresses: kubectl done in {applied_s:.1f} s, all answered in {served_s:.1f} s;"
        f" RSS operator {res['operator_rss_kb'] / 1024:.0f} MB (peak {res['operator_peak_kb'] / 1024:.0f}),"
        f" DNS {res['dns_rss_kb'] / 1024:.0f} MB (peak {res['dns_peak_kb'] / 1024:.0f})"
    )
    return res


# ---------------------------------------------------------------------------------------------
# Report


def report(c):
    """The section of docs/benchmarks.md, as Markdown lines."""
    out = ["## Cluster mode (real kube-apiserver)\n"]
    w = out.append
    if "skipped" in c:
        w(f"Not measured: {c['skipped']}.\n")
        return out
    v = c["versions"]
    w(
        f"`scripts/controlplane.sh up bench` starts etcd and kube-apiserver ({v['kubernetes']}, RBAC on) as "
        "local processes on the same machine; the CRDs are applied server-side, the chart is installed "
        f"with helm {v['helm']} (`--set zones={{gtm.example.com}} --set crds.install=false`), and the release "
        "binaries run as processes with the environment of the chart's Deployments (only the listen "
        "addresses moved to free 127.0.0.1 ports), each authenticated with a token of the chart's own "
        "ServiceAccount (`kubectl create token`), so RBAC is the chart's. The DNS process gets "
        "`GTM_RRL_RATE`/`GTM_RRL_BURST` raised so that the 1 ms poller, one source address, is not "
        "rate limited. Nothing is pinned: the control plane, the operators, the DNS process and the "
        "pollers share the machine's cores.\n"
    )
    a = c["apply"]
    x, k = a["answer_ms"], a["kubectl_ms"]
    w(
        f"**`kubectl apply` to answer.** An access domain's pool is flipped {a['changes']} times "
        "(`kubectl apply --server-side` of the changed `GtmAccessDomain`, 50 to 250 ms apart) while a UDP "
        "client polls the name every millisecond; the time runs from the start of the kubectl process "
        "to the first changed answer, so it includes kubectl's own start-up and request "
        f"(the kubectl process alone, to its exit: p50 {fmt_ms(k['p50'])}, p99 {fmt_ms(k['p99'])}).\n"
    )
    if "service" in c:
        sv = c["service"]
        w(
            f"**Service status to answer.** A LoadBalancer `Service`'s `status.loadBalancer.ingress` is moved "
            f"between two IPs {sv['changes']} times (`kubectl patch --subresource=status`, as a cloud's "
            "load-balancer controller would write it, 50 to 250 ms apart); a pool takes its address through "
            "`endpointSources` (the chart's `operator.endpointDiscovery.kinds={Service}`). The time runs "
            "from the start of the kubectl process to the first changed answer: kubectl, the operator's "
            "Service watch, its 50 ms coalescing pause, the compile and server-side apply of the config "
            "ConfigMap, the DNS process's watch and swap (the kubectl process alone, to its exit: p50 "
            f"{fmt_ms(sv['kubectl_ms']['p50'])}, p99 {fmt_ms(sv['kubectl_ms']['p99'])}). From an edge "
            "cluster the endpoint agent adds its own watch, a 100 ms coalescing pause and the write of "
            "its ConfigMap in the control cluster (the real-API-server suite's "
            "`an_edge_clusters_service_reaches_the_answers_through_its_endpoint_agent` prints that time).\n"
        )
    hv = c["verdict"]
    w(
        f"**Health verdict to answer.** A `Sequential` pool whose first address has a TCP check "
        f"({hv['settings']}); its backend is killed (SIGKILL) and restarted, {hv['trials']} times "
        "alternately. The verdict's moment is when the leader's `gtm_operator_probes_total` for the "
        "result moves (the counter is incremented when the probe report carrying the verdict is "
        "drained); a thread scrapes it in a loop (scrape window p50 "
        f"{fmt_ms(hv['window_ms']['p50'], 1)}, p99 {fmt_ms(hv['window_ms']['p99'], 1)}; the moment is the "
        "window's middle). From there the path is cluster mode's: the operator's batch window "
        "(25 ms, `BATCH_WINDOW` in operator/src/monitor.rs) and the 50 ms coalescing pause before each "
        "reconcile pass (operator/src/cluster/mod.rs), the server-side apply of the health ConfigMap, "
        "the DNS process's watch and swap; the two fixed waits are 75 ms of the figure. For "
        "reference, backend kill or restart to answer (which adds the wait for the next "
        f"probe, up to the 1 s interval): p50 {fmt_ms(hv['event_to_answer_ms']['p50'])}, "
        f"p99 {fmt_ms(hv['event_to_answer_ms']['p99'])}.\n"
    )
    w("| path | n | min | p50 | p99 | max |")
    w("|---|---:|---:|---:|---:|---:|")
    for label, s in (
        ("`kubectl apply` to answer", x),
        *((("Service status to answer", c["service"]["answer_ms"]),) if "service" in c else ()),
        ("health verdict to answer (down and up)", hv["verdict_ms"]),
        ("verdict Down to answer", hv["down_ms"]),
        ("verdict Up to answer", hv["up_ms"]),
    ):
        w(f"| {label} | {s['n']} | {fmt_ms(s['min'])} | {fmt_ms(s['p50'])} | {fmt_ms(s['p99'])} | {fmt_ms(s['max'])} |")
    w("")
    t = c["takeover"]
    w(
        "**Leader takeover.** Two `gtm-operator run` processes (identities `op-0`, `op-1`; the operator's "
        f"Lease lasts {t['lease_duration_s']} s after its last renewal); the leader is killed with SIGKILL (no "
        "Lease release) 1 to 3 s after the previous change, and a domain change is applied right "
        "after the kill, which only the new leader can publish. The Lease holder is polled in a loop with "
        "`kubectl get lease -o jsonpath={.spec.holderIdentity}`, one kubectl process after the other "
        "(the moment is the middle of the window from the start of the last poll that saw the old "
        "holder to the end of the first that saw the new one), the name with the 1 ms poller. "
        f"{t['trials']} trials, the killed operator restarted as the standby after each:\n"
    )
    w("| trial | kill to Lease held by the standby | Lease poll window | kill to the change answered |")
    w("|---:|---:|---:|---:|")
    for i, (ls, win, an) in enumerate(zip(t["lease_s"], t["window_ms"], t["answer_s"])):
        w(f"| {i + 1} | {ls:.2f} s | {win:.0f} ms | {an:.2f} s |")
    w("")
    w(
        "**Scale.** N addresses as CRs: `Weighted` IPv4 pools of 250 addresses (no health checks, so "
        "the figures are the API path's, not the prober's) and one access domain per pool, applied "
        "into an empty namespace by 4 parallel `kubectl apply --server-side` of multi-document files, "
        "with a fresh operator (leader) and DNS process. Served: every domain answered with its own "
        "pool's addresses (polled every 0.2 s). RSS after the last answer and 5 s of settling "
        "(`VmRSS`) and the peak (`VmHWM`) from `/proc`; kube-apiserver's and etcd's RSS for "
        "context.\n"
    )
    w(
        "| addresses | pools + domains | kubectl apply done | first answer | all answered | config ConfigMaps | "
        "payload bytes | operator RSS (peak) | DNS RSS (peak) | kube-apiserver / etcd RSS |"
    )
    w("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    for s in c["scale"]:
        payload = ", ".join(f"{name} {size(val)}" for name, val in sorted(s["payload_bytes"].items()))
        w(
            f"| {s['label']} | {s['pools']} + {s['pools']} | {s['applied_s']:.1f} s | {s['first_answer_s']:.1f} s | "
            f"{s['served_s']:.1f} s | {s['config_parts']} | {payload} | "
            f"{mb(s['operator_rss_kb'])} ({mb(s['operator_peak_kb'])}) | "
            f"{mb(s['dns_rss_kb'])} ({mb(s['dns_peak_kb'])}) | {mb(s['apiserver_rss_kb'])} / {mb(s['etcd_rss_kb'])} |"
        )
    w("")
    return out


def fmt_ms(value, digits=0):
    return f"{value:,.{digits}f} ms"


def size(n):
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def mb(kb):
    return f"{kb / 1024:.0f} MB"
