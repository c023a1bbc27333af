#!/usr/bin/env python3
"""kube-gtm benchmark suite (`make bench`, through bench/run.sh).

Measures, on this machine and in one run, with every process on 127.0.0.1:

1. DNS throughput and latency of gtm-dnspod, gdnsd (weighted plugin, tcp_connect monitors) and
   Knot (static zone) with dnsperf, server and load generator pinned to different cores,
   two query mixes, median of 3 runs;
2. propagation: manifest change to DNS answer (operator local mode + DNS pod), and health
   verdict to answer;
3. failover beside gdnsd at its fastest monitoring settings;
4. scale: compile time, published size, DNS pod RSS, reload under full load;
5. prober CPU for 10 000 TCP tasks at 1 s;
6. cluster mode against a real kube-apiserver (bench/cluster.py);
7. a UDP flood from one source, response rate limiting on and off (bench/flood.py);
8. probe locations: a location's verdict to the DNS answer (operator local mode + DNS pod);
9. DNSSEC: signed answers against unsigned, queries per server core (bench/dnssec.py).

Writes the report (Markdown) and the raw results (JSON). Every process it starts is in its own
process group and is killed on exit, error or signal. Python standard library only.

Usage: bench.py --root REPO --bin DIR --scale-bin FILE [--out FILE] [--quick] [--only LIST]
       bench.py listen ADDR:PORT   (a TCP listener, used as a health-checked backend)
"""

import argparse
import datetime
import json
import os
import platform
import random
import re
import shlex
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

ZONE = "gtm.example.com"
# The throughput mixes: name, query file, dnsperf arguments. ECS: 10.1.2.0/24 (family 1, source
# prefix 24, scope 0, three address bytes). TCP: the clients' connections each carry several
# queries in flight (pipelining, -q over -c).
MIXES = (
    ("plain", "hits", ()),
    ("EDNS", "hits", ("-e",)),
    ("EDNS+DO", "hits", ("-D",)),
    ("ECS", "hits", ("-E", "8:000118000a0102")),
    ("90/10", "90/10", ("-e",)),
    ("TCP", "hits", ("-e", "-m", "tcp")),
)
STEADY_QPS = 1000
# Length of each run at the steady rate (4 000 responses), and which percentiles are kept.
STEADY_SECONDS = 4
STEADY_KEYS = ("p50_ms", "p99_ms", "p999_ms")
SECTIONS = ("throughput", "propagation", "scale", "failover", "prober", "cluster", "flood", "locations", "dnssec")
CLK_TCK = os.sysconf("SC_CLK_TCK")

# ---------------------------------------------------------------------------------------------
# Processes: every child in its own process group, all killed at exit.

CHILDREN = []
COMMANDS = []  # (section, command line) for the report


def log(*args):
    print("[bench]", *args, file=sys.stderr, flush=True)


def record(section, argv):
    line = " ".join(shlex.quote(str(a)) for a in argv)
    if (section, line) not in COMMANDS:
        COMMANDS.append((section, line))


def start(section, argv, stdout=None, stderr=None, env=None):
    record(section, argv)
    proc = subprocess.Popen(
        [str(a) for a in argv],
        stdout=stdout if stdout is not None else subprocess.DEVNULL,
        stderr=stderr if stderr is not None else subprocess.DEVNULL,
        start_new_session=True,
        env=env,
    )
    CHILDREN.append(proc)
    return proc


def stop(proc, sig=signal.SIGTERM, timeout=5.0):
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if proc in CHILDREN:
        CHILDREN.remove(proc)


def stop_all():
    for proc in list(CHILDREN):
        try:
            stop(proc, timeout=3.0)
        except Exception as e:  # noqa: BLE001 - cleanup must go on
            log(f"cleanup of {proc.pid}: {e}")


def on_signal(signum, _frame):
    log(f"signal {signum}: stopping every process started")
    stop_all()
    sys.exit(128 + signum)


def pinned(core, argv):
    """argv run on one core with taskset, or as is where there is one core."""
    if core is None:
        return list(argv)
    return ["taskset", "-c", str(core)] + list(argv)


def keep_on_core(section, proc, core, name):
    """Pins every thread of a server that answers to `core` again (as `taskset -a -p`). knotd
    sets each UDP worker's affinity itself as the worker starts (worker i on CPU i mod the CPUs
    online), which puts one of them beside the load generator, where it answers without a
    cross-core wake-up: a server that leaves its core is no longer measured on one core. Passes
    until two in a row find every thread on the core (a worker may start after the first)."""
    if core is None:
        return
    record(section, ["taskset", "-a", "-c", "-p", core, "PID"])
    moved, settled = 0, 0
    for _ in range(50):
        strays = 0
        for tid in os.listdir(f"/proc/{proc.pid}/task"):
            try:
                if os.sched_getaffinity(int(tid)) != {core}:
                    os.sched_setaffinity(int(tid), {core})
                    strays += 1
            except ProcessLookupError:
                pass  # the thread ended meanwhile
        moved += strays
        settled = settled + 1 if strays == 0 else 0
        if settled == 2:
            break
        time.sleep(0.05)
    else:
        raise RuntimeError(f"{name}: its threads keep leaving core {core}")
    if moved:
        log(f"{name}: {moved} thread(s) had left core {core}; pinned back")


def cpu_ticks(pid):
    """utime + stime of a process, all its threads, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])  # kB
    return None


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                    t.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port")


def wait_until(what, predicate, timeout=30.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout} s waiting for {what}")


def write_atomic(path, text):
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


# ---------------------------------------------------------------------------------------------
# A minimal DNS client (UDP), enough to see which addresses an answer holds.


class Dns:
    def __init__(self, port, timeout=0.2):
        self.addr = ("127.0.0.1", port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(timeout)

    def close(self):
        self.sock.close()

    def query(self, name, qtype=1):
        """(rcode, sorted A/AAAA values) or (None, None) on timeout."""
        qid = random.randrange(65536)
        qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
        packet = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0) + qname + struct.pack(">HH", qtype, 1)
        self.sock.sendto(packet, self.addr)
        while True:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                return None, None
            if len(data) >= 12 and struct.unpack(">H", data[:2])[0] == qid:
                break
        flags, qd, an = struct.unpack(">HHH", data[2:8])
        pos = 12
        for _ in range(qd):
            pos = skip_name(data, pos) + 4
        values = []
        for _ in range(an):
            pos = skip_name(data, pos)
            rtype, _cls, _ttl, rdlen = struct.unpack(">HHIH", data[pos : pos + 10])
            pos += 10
            rdata = data[pos : pos + rdlen]
            pos += rdlen
            if rtype == 1:
                values.append(socket.inet_ntop(socket.AF_INET, rdata))
            elif rtype == 28:
                values.append(socket.inet_ntop(socket.AF_INET6, rdata))
        return flags & 0xF, sorted(values)


def skip_name(data, pos):
    while True:
        length = data[pos]
        if length == 0:
            return pos + 1
        if length & 0xC0 == 0xC0:
            return pos + 2
        pos += 1 + length


def wait_answer(dns, name, predicate, timeout, interval=0.001):
    """Polls until predicate(values) holds; returns the monotonic time it first held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, values = dns.query(name)
        now = time.monotonic()
        if values is not None and predicate(values):
            return now
        time.sleep(interval)
    raise RuntimeError(f"{name}: the expected answer did not come within {timeout} s")


# ---------------------------------------------------------------------------------------------
# TCP listener used as a backend for health checks.


def listen_forever(spec):
    host, port = spec.rsplit(":", 1)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, int(port)))
    srv.listen(1024)
    print("ready", flush=True)
    while True:
        conn, _ = srv.accept()
        conn.close()


def start_backend(section, addr, port):
    proc = start(
        section, [sys.executable, os.path.abspath(__file__), "listen", f"{addr}:{port}"], stdout=subprocess.PIPE
    )
    line = proc.stdout.readline().decode().strip()
    if line != "ready":
        raise RuntimeError(f"backend {addr}:{port} did not start")
    return proc


# ---------------------------------------------------------------------------------------------
# Manifests


def template_yaml(name, interval, timeout_ms, failure, success, interval_ms=None):
    millis = f"  intervalMillis: {interval_ms}\n" if interval_ms else ""
    return f"""apiVersion: gtm.kubegtm.io/v1alpha1
kind: HealthCheckTemplate
metadata:
  name: {name}
spec:
  protocol: TCP
  intervalSeconds: {interval}
{millis}  timeoutMillis: {timeout_ms}
  failureThreshold: {failure}
  successThreshold: {success}
"""


def pool_yaml(name, policy, addresses, template=None, port=None, extra=""):
    """addresses: list of (value, weight, order, mode)."""
    checks = f"  healthChecks:\n    - template: {template}\n      port: {port}\n" if template else ""
    lines = []
    for value, weight, order, mode in addresses:
        lines.append(f"    - value: {value}\n      weight: {weight}\n      order: {order}\n")
        if mode:
            lines.append(f"      mode: {mode}\n")
    return (
        f"apiVersion: gtm.kubegtm.io/v1alpha1\nkind: AddressPool\nmetadata:\n  name: {name}\nspec:\n"
        f"  type: IPv4\n  policy: {policy}\n{extra}{checks}  addresses:\n" + "".join(lines)
    )


def domain_yaml(name, fqdn, ttl, pools, policy="Sequential"):
    members = "".join(f"    - name: {p}\n      order: {i + 1}\n" for i, p in enumerate(pools))
    return (
        f"apiVersion: gtm.kubegtm.io/v1alpha1\nkind: GtmAccessDomain\nmetadata:\n  name: {name}\nspec:\n"
        f"  domain: {fqdn}\n  recordType: A\n  ttl: {ttl}\n  policy: {policy}\n  pools:\n{members}"
    )


def docs(*parts):
    return "---\n".join(parts)


class VerdictFlip:
    """One task's verdict in a health payload (`health`, parsed from `output`/health.json) as
    the operator writes it on a change: by task id, and by task number (schema 1.3: the task's
    position in the task list of `output`/config.json, its first appearance) when the payload
    carries numbered verdicts. `set` also moves the generation."""

    def __init__(self, output, health, task):
        self.health, self.task, self.number = health, task, None
        if "numbered" in health:
            with open(os.path.join(output, "config.json")) as f:
                config = json.load(f)
            ids = dict.fromkeys(t for p in config["pools"] for a in p["addresses"] for t in a.get("tasks", []))
            self.number = list(ids).index(task)
            self.verdicts = bytearray(health["numbered"]["verdicts"], "ascii")

    def set(self, down):
        self.health["generation"] += 1
        self.health["tasks"][self.task] = "Down" if down else "Up"
        if self.number is not None:
            self.verdicts[self.number] = ord("D" if down else "U")
            self.health["numbered"]["verdicts"] = self.verdicts.decode("ascii")


# ---------------------------------------------------------------------------------------------
# The servers


class Bench:
    def __init__(self, args):
        self.args = args
        self.bin = args.bin
        self.work = tempfile.mkdtemp(prefix="gtm-bench-")
        ncpu = len(os.sched_getaffinity(0))
        self.load_core, self.server_core = (0, 1) if ncpu >= 2 else (None, None)
        self.results = {"sections": {}}
        self.quick = args.quick

    def path(self, *parts):
        p = os.path.join(self.work, *parts)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    # --- kube-gtm

    def start_operator(self, section, manifests, output, zones=(ZONE,)):
        log_file = open(self.path(section, "operator.log"), "w")
        argv = [
            os.path.join(self.bin, "gtm-operator"),
            "local",
            "--manifests",
            manifests,
            "--output",
            output,
            "--zone",
            ",".join(zones),
            # Any free port: the topology page is not measured here.
            "--http-listen",
            "127.0.0.1:0",
        ]
        proc = start(section, pinned(self.load_core, argv), stdout=log_file, stderr=subprocess.STDOUT)
        wait_until("operator config.json", lambda: os.path.exists(os.path.join(output, "config.json")))
        return proc

    def start_dnspod(self, section, config_dir, core=None, log_name="dnspod.log", rrl=False, bin_dir=None):
        """gtm-dnspod (from `bin_dir`, else the build measured) on `config_dir`; response rate
        limiting only with `rrl` (the other sections measure serving, from one source)."""
        dns_port, http_port = free_port(), free_port()
        log_file = open(self.path(section, log_name), "w")
        argv = [
            os.path.join(bin_dir or self.bin, "gtm-dnspod"),
            "--config-dir",
            config_dir,
            "--dns-listen",
            f"127.0.0.1:{dns_port}",
            "--http-listen",
            f"127.0.0.1:{http_port}",
        ]
        if not rrl:
            argv += ["--rrl-rate", "0"]
        env = dict(os.environ, RUST_LOG="warn")
        proc = start(section, pinned(core, argv), stdout=log_file, stderr=subprocess.STDOUT, env=env)
        started = time.monotonic()
        wait_until("gtm-dnspod ready", lambda: http_ok(f"http://127.0.0.1:{http_port}/readyz"), timeout=120)
        ready_s = time.monotonic() - started
        keep_on_core(section, proc, core, "gtm-dnspod")
        return proc, dns_port, http_port, ready_s

    # --- gdnsd

    def start_gdnsd(self, section, zone_records, plugins, service_types, core=None):
        port = free_port()
        d = self.path(section, "gdnsd")
        os.makedirs(os.path.join(d, "zones"), exist_ok=True)
        with open(os.path.join(d, "config"), "w") as f:
            f.write(
                "options => {\n"
                f"  listen => [ 127.0.0.1:{port} ]\n"
                f"  run_dir => {d}/run\n"
                f"  state_dir => {d}/state\n"
                "}\n"
                f"service_types => {{\n{service_types}}}\n"
                f"plugins => {{\n{plugins}}}\n"
            )
        with open(os.path.join(d, "zones", ZONE), "w") as f:
            f.write(
                "$TTL 3600\n"
                f"@ SOA ns1.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 30\n"
                f"@ NS ns1.{ZONE}.\n"
                "ns1 A 127.0.0.1\n" + zone_records
            )
        check = ["gdnsd", "-c", d, "checkconf"]
        record(section, check)
        out = subprocess.run(check, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"gdnsd checkconf failed:\n{out.stderr}")
        log_file = open(self.path(section, "gdnsd.log"), "w")
        proc = start(section, pinned(core, ["gdnsd", "-c", d, "start"]), stdout=log_file, stderr=subprocess.STDOUT)
        dns = Dns(port)
        wait_until("gdnsd answering", lambda: dns.query(f"ns1.{ZONE}")[0] == 0, timeout=30)
        dns.close()
        keep_on_core(section, proc, core, "gdnsd")
        return proc, port

    # --- PowerDNS (Authoritative, LUA records)

    def start_pdns(self, section, zone_records, settings=""):
        """pdns_server with the bind backend and LUA records on; every cache off, so that an
        answer reflects the health checks' state as soon as it changes."""
        port = free_port()
        d = self.path(section, "pdns")
        os.makedirs(d, exist_ok=True)
        zone = os.path.join(d, "zone")
        with open(zone, "w") as f:
            f.write(
                f"$ORIGIN {ZONE}.\n"
                "@ 3600 IN SOA ns1 hostmaster 1 3600 600 86400 30\n"
                "@ 3600 IN NS ns1\n"
                "ns1 3600 IN A 127.0.0.1\n" + zone_records
            )
        with open(os.path.join(d, "named.conf"), "w") as f:
            f.write(f'zone "{ZONE}" {{ type master; file "{zone}"; }};\n')
        with open(os.path.join(d, "pdns.conf"), "w") as f:
            f.write(
                "launch=bind\n"
                f"bind-config={d}/named.conf\n"
                "local-address=127.0.0.1\n"
                f"local-port={port}\n"
                f"socket-dir={d}\n"
                "enable-lua-records=yes\n"
                "cache-ttl=0\nquery-cache-ttl=0\nnegquery-cache-ttl=0\n"
                "guardian=no\ndaemon=no\nsetuid=\nsetgid=\n" + settings
            )
        log_file = open(self.path(section, "pdns.log"), "w")
        proc = start(section, ["pdns_server", f"--config-dir={d}"], stdout=log_file, stderr=subprocess.STDOUT)
        dns = Dns(port)
        wait_until("pdns answering", lambda: dns.query(f"ns1.{ZONE}")[0] == 0, timeout=30)
        dns.close()
        return proc, port

    # --- Knot

    def start_knot(self, section, zone_records, core=None, name="knot"):
        port = free_port()
        d = self.path(section, name)
        os.makedirs(os.path.join(d, "run"), exist_ok=True)
        with open(os.path.join(d, "knot.conf"), "w") as f:
            f.write(
                "server:\n"
                f"  rundir: {d}/run\n"
                f"  listen: 127.0.0.1@{port}\n"
                # ECS answered as RFC 7871 asks (the option echoed), as gdnsd and kube-gtm do.
                "  edns-client-subnet: on\n"
                "database:\n"
                f"  storage: {d}\n"
                "log:\n"
                "  - target: stderr\n"
                "    any: warning\n"
                "zone:\n"
                f"  - domain: {ZONE}\n"
                f"    file: {d}/{ZONE}.zone\n"
            )
        with open(os.path.join(d, f"{ZONE}.zone"), "w") as f:
            f.write(
                f"$ORIGIN {ZONE}.\n$TTL 3600\n"
                f"@ SOA ns1.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 30\n"
                f"@ NS ns1.{ZONE}.\n"
                "ns1 A 127.0.0.1\n" + zone_records
            )
        log_file = open(self.path(section, f"{name}.log"), "w")
        argv = ["knotd", "-c", os.path.join(d, "knot.conf")]
        proc = start(section, pinned(core, argv), stdout=log_file, stderr=subprocess.STDOUT)
        dns = Dns(port)
        wait_until("knotd answering", lambda: dns.query(f"ns1.{ZONE}")[0] == 0, timeout=30)
        dns.close()
        keep_on_core(section, proc, core, f"knotd ({name})")
        return proc, port

    # -----------------------------------------------------------------------------------------
    # 1. Throughput

    def dnsperf(self, section, port, queries, seconds, outstanding, extra=(), verbose_file=None, max_qps=None):
        argv = [
            "dnsperf",
            "-s",
            "127.0.0.1",
            "-p",
            port,
            "-d",
            queries,
            "-l",
            seconds,
            "-c",
            self.args.clients,
            "-q",
            outstanding,
            "-t",
            2,
            *extra,
        ]
        if max_qps:
            argv += ["-Q", max_qps]
        if verbose_file:
            argv.append("-v")
        argv = pinned(self.load_core, argv)
        record(section, argv)
        out_file = verbose_file or self.path(section, "dnsperf.out")
        # dnsperf stops sending after `seconds` and waits at most its `-t` for the rest: far more
        # than that means it is stuck, which fails the section instead of hanging the suite.
        with open(out_file, "w") as f:
            subprocess.run([str(a) for a in argv], stdout=f, stderr=subprocess.STDOUT, check=True,
                           timeout=int(seconds) + 120)
        return parse_dnsperf(out_file)

    def profile(self, section, pid, name, run):
        """Where the server process `pid` spends its CPU while `run()` loads it: `perf record`
        (sampling, no call graphs), then the share of samples per binary and the top symbols."""
        data = self.path(section, f"perf-{name}.data")
        rec = start(section, ["perf", "record", "-q", "-F", "1999", "-p", pid, "-o", data])
        time.sleep(0.5)
        run()
        stop(rec, signal.SIGINT, timeout=60)

        def report(sort, limit):
            argv = ["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", sort,
                    "--percent-limit", limit]
            record(section, argv)
            out = subprocess.run(argv, capture_output=True, text=True)
            rows = []
            for line in out.stdout.splitlines():
                m = re.match(r"\s+([0-9.]+)%\s+(\S+)\s*(?:\[[.k]\]\s+(.*))?$", line)
                if m:
                    rows.append((float(m.group(1)), m.group(2), (m.group(3) or "").strip()))
            return rows

        by_binary = [(pct, dso) for pct, dso, _ in report("dso", "0.5")]
        symbols = report("dso,sym", "1")[:12]
        os.remove(data)
        return {"binaries": by_binary, "symbols": symbols}

    def throughput(self):
        section = "throughput"
        port = 15400 + random.randrange(500)
        addrs = [("127.0.50.1", 3), ("127.0.50.2", 2), ("127.0.50.3", 1)]
        backends = [start_backend(section, a, port) for a, _ in addrs]

        # kube-gtm: operator local mode compiles the manifests; the DNS pod serves them. The
        # operator's prober checks the backends every second meanwhile (on the load core).
        manifests = self.path(section, "manifests", "x")[:-2]
        output = self.path(section, "payloads", "x")[:-2]
        with open(os.path.join(manifests, "www.yaml"), "w") as f:
            f.write(
                docs(
                    template_yaml("tcp", 1, 500, 3, 1),
                    pool_yaml("www", "Weighted", [(a, w, 1, None) for a, w in addrs], "tcp", port,
                              extra="  healthJudgement: AnyOk\n"),
                    domain_yaml("www", f"www.{ZONE}", 30, ["www"]),
                )
            )
        operator = self.start_operator(section, manifests, output)
        gtm, gtm_port, _, _ = self.start_dnspod(section, output, core=self.server_core)

        # gdnsd's monitors run inside it, on the server core, at its shortest interval (2 s).
        service = (
            f"  tcp_bench => {{ plugin => tcp_connect, port => {port}, interval => 2, timeout => 1,"
            " up_thresh => 1, ok_thresh => 1, down_thresh => 3 }\n"
        )
        plugins = (
            "  weighted => {\n    service_types => tcp_bench\n    multi => false\n    www => {\n"
            + "".join(f"      s{i} => [ {a}, {w} ]\n" for i, (a, w) in enumerate(addrs))
            + "    }\n  }\n"
        )
        gd, gd_port = self.start_gdnsd(section, "www 30 DYNA weighted!www\n", plugins, service, core=self.server_core)
        kn, kn_port = self.start_knot(section, f"www 30 A {addrs[0][0]}\n", core=self.server_core)
        servers = {"kube-gtm": (gtm, gtm_port), "gdnsd": (gd, gd_port), "knot": (kn, kn_port)}
        if self.args.baseline_bin:
            # Another build of the DNS pod on the same payloads, measured beside (before/after).
            base = self.start_dnspod(section, output, core=self.server_core, log_name="dnspod-baseline.log",
                                     bin_dir=self.args.baseline_bin)
            servers["kube-gtm-baseline"] = base[:2]
        if self.args.knot_control:
            # A second knotd configured as the first, measured in turns like every server: how far
            # apart the same server lands from itself is the noise floor of each comparison.
            servers["knot-control"] = self.start_knot(section, f"www 30 A {addrs[0][0]}\n", core=self.server_core,
                                                      name="knot-control")
        if self.args.mixes:
            wanted = self.args.mixes.split(",")
            mixes_run = [m for m in MIXES if m[0] in wanted]
        else:
            mixes_run = MIXES

        # Every server must give the same kinds of answers before it is measured.
        for name, (_, p) in servers.items():
            dns = Dns(p)
            rc, values = dns.query(f"www.{ZONE}")
            assert rc == 0 and len(values) == 1 and values[0] in [a for a, _ in addrs], (name, rc, values)
            assert dns.query(f"nx1.{ZONE}")[0] == 3, name
            rc, values = dns.query(f"www.{ZONE}", 28)
            assert rc == 0 and values == [], (name, rc, values)
            dns.close()

        files = {
            "hits": self.path(section, "queries-hits.txt"),
            "90/10": self.path(section, "queries-mixed.txt"),
        }
        with open(files["hits"], "w") as f:
            f.write(f"www.{ZONE} A\n" * 1000)
        with open(files["90/10"], "w") as f:
            for i in range(1000):
                if i % 20 == 9:
                    f.write(f"nx{i}.{ZONE} A\n")  # NXDOMAIN
                elif i % 20 == 19:
                    f.write(f"www.{ZONE} AAAA\n")  # NODATA
                else:
                    f.write(f"www.{ZONE} A\n")
        mixes = {name: (files[queries], extra) for name, queries, extra in mixes_run}

        seconds = 3 if self.quick else self.args.seconds
        outstanding = self.args.outstanding
        runs, steady = {}, {}
        for rep in range(1 if self.quick else self.args.saturation_rounds):
            for mix, (qfile, extra) in mixes.items():
                for name, (proc, p) in in_turn(servers, rep):
                    # Plain run: throughput, average latency, server CPU.
                    t0, c0 = time.monotonic(), cpu_ticks(proc.pid)
                    res = self.dnsperf(section, p, qfile, seconds, outstanding, extra)
                    t1, c1 = time.monotonic(), cpu_ticks(proc.pid)
                    res["cpu_share"] = (c1 - c0) / CLK_TCK / (t1 - t0)
                    res["qps_per_core"] = res["qps"] / res["cpu_share"] if res["cpu_share"] else None
                    # Same settings with per-response logging (-v): the latency distribution.
                    vfile = self.path(section, f"verbose-{name}-{slug(mix)}-{rep}.txt")
                    lat = self.dnsperf(section, p, qfile, seconds, outstanding, extra, verbose_file=vfile)
                    os.remove(vfile)
                    for k in ("p50_ms", "p99_ms", "p999_ms"):
                        res[k] = lat[k]
                    res["v_qps"], res["v_avg_ms"], res["v_lost"] = lat["qps"], lat["avg_ms"], lat["lost"]
                    res["loadavg"] = float(open("/proc/loadavg").read().split()[0])
                    log(
                        f"{mix:8} {name:9} run {rep + 1}: {res['qps']:.0f} qps, avg {res['avg_ms']:.3f} ms,"
                        f" cpu {res['cpu_share']:.2f}, lost {res['lost']}; with -v: {lat['qps']:.0f} qps,"
                        f" p50/p99/p99.9 {res['p50_ms']:.3f}/{res['p99_ms']:.3f}/{res['p999_ms']:.3f} ms"
                    )
                    runs.setdefault(mix, {}).setdefault(name, []).append(res)
        # A steady 1 000 queries/s (what a busy authoritative server sees), latency only. A run's
        # p99 at this rate rests on a few dozen responses and moves with whatever else the machine
        # does, so the servers take turns over several rounds and the median of the runs decides.
        steady_seconds = 3 if self.quick else STEADY_SECONDS
        rounds = 1 if self.quick else self.args.steady_rounds
        steady_runs = {}
        for rep in range(rounds):
            for mix, (qfile, extra) in mixes.items():
                for name, (proc, p) in in_turn(servers, rep):
                    vfile = self.path(section, f"steady-{name}-{slug(mix)}.txt")
                    lat = self.dnsperf(section, p, qfile, steady_seconds, outstanding, extra,
                                       verbose_file=vfile, max_qps=STEADY_QPS)
                    os.remove(vfile)
                    res = {k: lat[k] for k in STEADY_KEYS + ("qps", "lost", "samples")}
                    res["loadavg"] = float(open("/proc/loadavg").read().split()[0])
                    steady_runs.setdefault(mix, {}).setdefault(name, []).append(res)
                    log(f"{mix:8} {name:9} at {STEADY_QPS}/s, round {rep + 1}: p50/p99/p99.9 "
                        f"{lat['p50_ms']:.3f}/{lat['p99_ms']:.3f}/{lat['p999_ms']:.3f} ms, load {res['loadavg']:.2f}")
        steady = {
            mix: {name: steady_median(rs) for name, rs in per.items()} for mix, per in steady_runs.items()
        }
        # What probing costs the answer path: the DNS pod's wake-ups while idle, and every server's
        # latency at the steady rate with the operator probing and paused (SIGSTOP: the pod keeps
        # its config and health), in turns. Every server is measured both ways: the operator's
        # probes are work on the machine (its core, the backends' accepts) that any server sees.
        plain_file, plain_extra = mixes.get("plain", next(iter(mixes.values())))
        probing = {"idle_wakeups_per_s": wakeups(gtm.pid, 5)}
        probing_runs = {}
        for rep in range(rounds):
            for state in ("probing", "prober paused"):
                os.kill(operator.pid, signal.SIGSTOP if state == "prober paused" else signal.SIGCONT)
                for name, (_, p) in in_turn(servers, rep):
                    vfile = self.path(section, f"steady-probing-{name}-{slug(state)}.txt")
                    lat = self.dnsperf(section, p, plain_file, steady_seconds, outstanding, plain_extra,
                                       verbose_file=vfile, max_qps=STEADY_QPS)
                    os.remove(vfile)
                    res = {k: lat[k] for k in STEADY_KEYS + ("lost",)}
                    res["loadavg"] = float(open("/proc/loadavg").read().split()[0])
                    probing_runs.setdefault(state, {}).setdefault(name, []).append(res)
                    log(f"{name:9} plain at {STEADY_QPS}/s, {state}, round {rep + 1}: p50/p99/p99.9 "
                        f"{lat['p50_ms']:.3f}/{lat['p99_ms']:.3f}/{lat['p999_ms']:.3f} ms")
        os.kill(operator.pid, signal.SIGCONT)
        for state, per in probing_runs.items():
            probing[state] = {name: steady_median(rs) for name, rs in per.items()}
        # Where kube-gtm's CPU goes on each path, from a profile at full load.
        profiles = {}
        if shutil.which("perf") and runs:
            for mix, (qfile, extra) in mixes.items():
                profiles[mix] = self.profile(
                    section, gtm.pid, f"kube-gtm-{slug(mix)}",
                    lambda: self.dnsperf(section, gtm_port, qfile, min(seconds, 5), outstanding, extra),
                )
        table = {}
        for mix, per_server in runs.items():
            for name, rs in per_server.items():
                table.setdefault(mix, {})[name] = {
                    k: statistics.median(r[k] for r in rs)
                    for k in ("qps", "avg_ms", "p50_ms", "p99_ms", "p999_ms", "cpu_share", "qps_per_core",
                              "lost", "v_qps", "v_avg_ms")
                } | {"rcodes": rs[-1]["rcodes"], "runs": len(rs)}
        result = {
            "seconds": seconds,
            "outstanding": outstanding,
            "clients": self.args.clients,
            "steady_qps": STEADY_QPS,
            "steady_seconds": steady_seconds,
            "steady_runs": steady_runs,
            "mixes": {name: " ".join(extra) for name, (_, extra) in mixes.items()},
            "table": table,
            "runs": runs,
            "steady": steady,
            "profiles": profiles,
            "probing": probing,
            "versions": {
                "gdnsd": package_version("gdnsd"),
                "knot": first_line(["knotd", "-V"]),
                "dnsperf": dnsperf_version(),
            },
        }
        for proc in (*(proc for proc, _ in servers.values()), operator, *backends):
            stop(proc)
        self.results["sections"][section] = result

    # -----------------------------------------------------------------------------------------
    # 2. Propagation

    def propagation(self):
        section = "propagation"
        changes = 10 if self.quick else 50
        manifests = self.path(section, "manifests", "x")[:-2]
        output = self.path(section, "payloads", "x")[:-2]
        staging = self.path(section, "staging", "x")[:-2]
        fqdn = f"prop.{ZONE}"

        def manifest(i):
            return docs(
                pool_yaml("prop", "RoundRobin", [(f"127.0.70.{i % 250 + 1}", 1, 1, "AlwaysOnline")]),
                domain_yaml("prop", fqdn, 5, ["prop"]),
            )

        with open(os.path.join(manifests, "prop.yaml"), "w") as f:
            f.write(manifest(0))
        operator = self.start_operator(section, manifests, output)
        pod, port, _, _ = self.start_dnspod(section, output)
        dns = Dns(port)
        wait_answer(dns, fqdn, lambda v: v == ["127.0.70.1"], 10)
        samples = []
        for i in range(1, changes + 1):
            time.sleep(random.uniform(0.05, 0.25))
            staged = os.path.join(staging, "prop.yaml")
            with open(staged, "w") as f:
                f.write(manifest(i))
            want = [f"127.0.70.{i % 250 + 1}"]
            t0 = time.monotonic()
            os.rename(staged, os.path.join(manifests, "prop.yaml"))
            t1 = wait_answer(dns, fqdn, lambda v, w=want: v == w, 10)
            samples.append((t1 - t0) * 1000)
        dns.close()
        stop(operator)
        stop(pod)
        manifest_result = summary(samples)
        log(f"manifest change to answer: p50 {manifest_result['p50']:.1f} ms, p99 {manifest_result['p99']:.1f} ms")

        # Health verdict to answer: the DNS pod follows health.json, which the operator writes
        # when a verdict changes; here it is written directly, so only the DNS pod's part counts.
        hdir = self.path(section, "health-manifests", "x")[:-2]
        hout = self.path(section, "health-payloads", "x")[:-2]
        with open(os.path.join(hdir, "seq.yaml"), "w") as f:
            f.write(
                docs(
                    template_yaml("tcp", 1, 500, 1, 1),
                    pool_yaml("seq", "Sequential", [("127.0.71.1", 1, 1, None), ("127.0.71.2", 1, 2, None)],
                              "tcp", 9, extra="  sequentialMode: Preemptive\n"),
                    domain_yaml("seq", f"seq.{ZONE}", 5, ["seq"]),
                )
            )
        self.run_scale_helper(section, hdir, hout)
        with open(os.path.join(hout, "health.json")) as f:
            health = json.load(f)
        task = next(t for t in health["tasks"] if "127.0.71.1" in t)
        flip = VerdictFlip(hout, health, task)
        pod, port, _, _ = self.start_dnspod(section, hout, log_name="dnspod-health.log")
        dns = Dns(port)
        wait_answer(dns, f"seq.{ZONE}", lambda v: v == ["127.0.71.1"], 10)
        hsamples = []
        for i in range(changes):
            time.sleep(random.uniform(0.05, 0.25))
            down = i % 2 == 0
            flip.set(down)
            want = ["127.0.71.2"] if down else ["127.0.71.1"]
            text = json.dumps(health)
            tmp = os.path.join(hout, ".health.json.tmp")
            with open(tmp, "w") as f:
                f.write(text)
            t0 = time.monotonic()
            os.rename(tmp, os.path.join(hout, "health.json"))
            t1 = wait_answer(dns, f"seq.{ZONE}", lambda v, w=want: v == w, 10)
            hsamples.append((t1 - t0) * 1000)
        dns.close()
        stop(pod)
        health_result = summary(hsamples)
        log(f"health verdict to answer: p50 {health_result['p50']:.1f} ms, p99 {health_result['p99']:.1f} ms")
        self.results["sections"][section] = {
            "changes": changes,
            "manifest_ms": manifest_result,
            "health_ms": health_result,
        }

    # -----------------------------------------------------------------------------------------
    # 8. Probe locations

    def locations(self):
        """A location's verdict to the answer. Three locations vote on the primary's TCP task at
        failureRatePercent 50 (the embedded prober not selected): `a` always sees it down, `c`
        up, and `b` flips. This script plays the three `gtm-prober` processes: it writes their
        reports as they do (crds/src/location.rs, files renamed into place) and keeps their
        heartbeats fresh; the moment of a verdict is the rename of `b.verdicts.json`, the end the
        first answer that moved (two of three down: the standby; one: the primary)."""
        section = "locations"
        changes = 10 if self.quick else 50
        manifests = self.path(section, "manifests", "x")[:-2]
        output = self.path(section, "payloads", "x")[:-2]
        reports = os.path.join(output, "locations")
        os.makedirs(reports, exist_ok=True)
        fqdn = f"vote.{ZONE}"
        task = "default/tcp@127.0.72.1#9"
        with open(os.path.join(manifests, "vote.yaml"), "w") as f:
            f.write(
                docs(
                    template_yaml("tcp", 1, 500, 1, 1)
                    + "  failureRatePercent: 50\n  locations: {names: [a, b, c]}\n",
                    pool_yaml("primary", "RoundRobin", [("127.0.72.1", 1, 1, None)], "tcp", 9),
                    pool_yaml("standby", "RoundRobin", [("127.0.72.2", 1, 1, "AlwaysOnline")]),
                    domain_yaml("vote", fqdn, 5, ["primary", "standby"]),
                )
            )
        generation = {"a": 0, "b": 0, "c": 0}

        def report(name, kind, body):
            body = {"schemaVersion": "1.1", "location": name, **body}
            tmp = os.path.join(reports, f".{name}.{kind}.json.tmp")
            with open(tmp, "w") as f:
                f.write(json.dumps(body))
            return tmp, os.path.join(reports, f"{name}.{kind}.json")

        def verdicts(name, down):
            generation[name] += 1
            body = {"generation": generation[name], "up": [] if down else [task], "down": [task] if down else []}
            return report(name, "verdicts", body)

        def heartbeats():
            now = datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
            for name in generation:
                os.rename(*report(name, "heartbeat", {"observedTime": now, "intervalSeconds": 1}))

        heartbeats()
        for name, down in (("a", True), ("b", False), ("c", False)):
            os.rename(*verdicts(name, down))
        operator = self.start_operator(section, manifests, output)
        pod, port, _, _ = self.start_dnspod(section, output)
        dns = Dns(port)
        wait_answer(dns, fqdn, lambda v: v == ["127.0.72.1"], 10)
        samples = {"Down": [], "Up": []}
        for i in range(changes):
            time.sleep(random.uniform(0.05, 0.25))
            heartbeats()
            down = i % 2 == 0
            want = ["127.0.72.2"] if down else ["127.0.72.1"]
            staged = verdicts("b", down)
            t0 = time.monotonic()
            os.rename(*staged)
            t1 = wait_answer(dns, fqdn, lambda v, w=want: v == w, 10)
            samples["Down" if down else "Up"].append((t1 - t0) * 1000)
        dns.close()
        stop(operator)
        stop(pod)
        both = summary(samples["Down"] + samples["Up"])
        log(f"location verdict to answer: p50 {both['p50']:.1f} ms, p99 {both['p99']:.1f} ms")
        self.results["sections"][section] = {
            "changes": changes,
            "verdict_ms": both,
            "down_ms": summary(samples["Down"]),
            "up_ms": summary(samples["Up"]),
        }

    def run_scale_helper(self, section, manifests, output, runs=1):
        argv = [self.args.scale_bin, manifests, output, ZONE, runs]
        record(section, argv)
        out = subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    # -----------------------------------------------------------------------------------------
    # 4. Scale

    def scale(self):
        section = "scale"
        sizes = [(1000, 10)] if self.quick else [(1000, 10), (10000, 10)]
        results = []
        for domains, per_pool in sizes:
            tag = f"{domains}"
            manifests = self.path(section, f"manifests-{tag}", "x")[:-2]
            output = self.path(section, f"payloads-{tag}", "x")[:-2]
            generate_scale_manifests(manifests, domains, per_pool)
            res = self.run_scale_helper(section, manifests, output, runs=3)
            res["label"] = f"{domains} domains / {domains * per_pool} addresses"
            pod, port, http_port, ready_s = self.start_dnspod(
                section, output, core=self.server_core, log_name=f"dnspod-{tag}.log"
            )
            res["dnspod_ready_s"] = ready_s
            dns = Dns(port, timeout=1.0)
            rc, values = dns.query(f"d{domains - 1}.{ZONE}")
            assert rc == 0 and len(values) == 1, (rc, values)
            res["rss_kb"] = proc_status(pod.pid, "VmRSS")

            # Reload under full load: dnsperf at full speed over 1 000 of the names while
            # config.json is republished (a new generation each time) every 2 s.
            qfile = self.path(section, f"queries-{tag}.txt")
            with open(qfile, "w") as f:
                for i in range(1000):
                    f.write(f"d{(i * 7919) % domains}.{ZONE} A\n")
            with open(os.path.join(output, "config.json")) as f:
                config = json.load(f)
            seconds = 6 if self.quick else 14
            reloads = 2 if self.quick else 6
            argv = pinned(
                self.load_core,
                ["dnsperf", "-s", "127.0.0.1", "-p", port, "-d", qfile, "-l", seconds, "-c", 1, "-q",
                 self.args.outstanding, "-t", 5],
            )
            record(section, argv)
            out_file = self.path(section, f"reload-{tag}.out")
            before = metric_value(http_port, 'gtm_dnspod_reloads_total{payload="config",result="success"}')
            with open(out_file, "w") as f:
                perf = subprocess.Popen([str(a) for a in argv], stdout=f, stderr=subprocess.STDOUT)
                time.sleep(1.0)
                for _ in range(reloads):
                    config["generation"] += 1
                    write_atomic(os.path.join(output, "config.json"), json.dumps(config, separators=(",", ":")))
                    time.sleep((seconds - 2) / reloads)
                perf.wait()
            after = metric_value(http_port, 'gtm_dnspod_reloads_total{payload="config",result="success"}')
            load = parse_dnsperf(out_file)
            res["reload"] = {
                "reloads_written": reloads,
                "reloads_applied": (after or 0) - (before or 0),
                "sent": load["sent"],
                "completed": load["completed"],
                "lost": load["lost"],
                "qps": load["qps"],
                "rcodes": load["rcodes"],
            }
            # 200 verdicts: the p99 (nearest rank) is the 198th, a percentile rather than the
            # slowest sample, which it was at 40.
            res["health"] = self.scale_verdicts(output, dns, 10 if self.quick else 200)
            res["rss_peak_kb"] = proc_status(pod.pid, "VmHWM")
            res["rss_after_kb"] = proc_status(pod.pid, "VmRSS")
            dns.close()
            stop(pod)
            log(
                f"scale {res['label']}: compile {statistics.median(res['compile_s']):.3f} s,"
                f" config {res['config_bytes'] / 1e6:.1f} MB, RSS {res['rss_kb'] / 1024:.0f} MB"
                f" (peak {res['rss_peak_kb'] / 1024:.0f} MB), reload under load lost {load['lost']}"
            )
            results.append(res)
        self.results["sections"][section] = {"sizes": results}

    def scale_verdicts(self, output, dns, changes):
        """A verdict to the answer at this size: health.json (every task listed by id and by
        number) is replaced with the task of SCALE_FLIP_ADDRESS alternately Down and Up, as the
        operator writes it on a verdict change; the time runs from the rename to the first moved answer of `d0`."""
        path = os.path.join(output, "health.json")
        with open(path) as f:
            health = json.load(f)
        task = next(t for t in health["tasks"] if t.endswith(f"@{SCALE_FLIP_ADDRESS}#8080"))
        flip = VerdictFlip(output, health, task)
        name = f"d0.{ZONE}"
        wait_answer(dns, name, lambda v: v == [SCALE_FLIP_ADDRESS], 10)
        samples = []
        for i in range(changes):
            time.sleep(random.uniform(0.05, 0.25))
            down = i % 2 == 0
            flip.set(down)
            want = [SCALE_FLIP_STANDBY] if down else [SCALE_FLIP_ADDRESS]
            tmp = os.path.join(output, ".health.json.tmp")
            with open(tmp, "w") as f:
                f.write(json.dumps(health, separators=(",", ":")))
            t0 = time.monotonic()
            os.rename(tmp, path)
            t1 = wait_answer(dns, name, lambda v, w=want: v == w, 10)
            samples.append((t1 - t0) * 1000)
        result = summary(samples)
        result["health_bytes"] = os.path.getsize(path)
        log(f"scale: verdict to answer p50 {result['p50']:.1f} ms, p99 {result['p99']:.1f} ms")
        return result

    # -----------------------------------------------------------------------------------------
    # 3. Failover

    def failover(self):
        section = "failover"
        trials = 2 if self.quick else 5
        port = 15900 + random.randrange(90)
        result = {"trials": trials}

        # gdnsd at its fastest supported monitoring: `checkconf` refuses an interval below 2 s
        # ("Value out of range (2, 3600)"), the timeout must be below the interval and at least
        # 1 s: interval 2 s, timeout 1 s, every threshold 1.
        g1, g2 = "127.0.81.1", "127.0.81.2"
        gb = {a: start_backend(section, a, port) for a in (g1, g2)}
        interval = 2
        service = (
            f"  tcp_fo => {{ plugin => tcp_connect, port => {port}, interval => {interval}, timeout => 1,"
            " up_thresh => 1, ok_thresh => 1, down_thresh => 1 }\n"
        )
        plugins = f"  simplefo => {{\n    fo => {{ service_types => tcp_fo, primary => {g1}, secondary => {g2} }}\n  }}\n"
        gd, gd_port = self.start_gdnsd(section, "fo 5 DYNA simplefo!fo\n", plugins, service)
        result["gdnsd"] = self.failover_trials(section, "gdnsd", gd_port, f"fo.{ZONE}", gb, g1, g2, port, trials)
        result["gdnsd_settings"] = f"tcp_connect interval {interval} s, timeout 1 s, up/ok/down_thresh 1"
        stop(gd)
        for b in gb.values():
            stop(b)

        # PowerDNS: a LUA record, ifportup over both addresses; its checks run every
        # lua-health-checks-interval seconds (1, the smallest whole value; default 5), and
        # `selector='all'` answers every address that is up (ifportup has no priority sets), so
        # the primary leaving and coming back is what is timed.
        if shutil.which("pdns_server"):
            p1, p2 = "127.0.82.1", "127.0.82.2"
            pb = {a: start_backend(section, a, port) for a in (p1, p2)}
            record_line = f"fo 5 IN LUA A \"ifportup({port}, {{'{p1}', '{p2}'}}, {{selector='all'}})\"\n"
            pd, pd_port = self.start_pdns(section, record_line, "lua-health-checks-interval=1\n")
            result["powerdns"] = self.failover_trials(section, "powerdns", pd_port, f"fo.{ZONE}", pb, p1, p2, port, trials)
            result["powerdns_settings"] = (
                "LUA record `ifportup` (selector `all`), lua-health-checks-interval 1 s, caches off"
            )
            stop(pd)
            for b in pb.values():
                stop(b)

        # kube-gtm: operator local mode (manifests, prober, health.json) + DNS pod, at a 1 s
        # interval (as before) and at 100 ms (intervalMillis).
        for key, addresses, interval_ms, timeout_ms in (
            ("kube-gtm", ("127.0.80.1", "127.0.80.2"), None, 500),
            ("kube-gtm-100ms", ("127.0.80.3", "127.0.80.4"), 100, 80),
        ):
            k1, k2 = addresses
            kb = {a: start_backend(section, a, port) for a in (k1, k2)}
            manifests = self.path(section, f"manifests-{key}", "x")[:-2]
            output = self.path(section, f"payloads-{key}", "x")[:-2]
            with open(os.path.join(manifests, "fo.yaml"), "w") as f:
                f.write(
                    docs(
                        template_yaml("tcp-fast", 1, timeout_ms, 1, 1, interval_ms),
                        pool_yaml("fo", "Sequential", [(k1, 1, 1, None), (k2, 1, 2, None)], "tcp-fast", port,
                                  extra="  sequentialMode: Preemptive\n"),
                        domain_yaml("fo", f"fo.{ZONE}", 5, ["fo"]),
                    )
                )
            operator = self.start_operator(section, manifests, output)
            pod, pod_port, _, _ = self.start_dnspod(section, output)
            try:
                result[key] = self.failover_trials(section, key, pod_port, f"fo.{ZONE}", kb, k1, k2, port, trials)
            except RuntimeError as e:
                # A build whose local mode publishes no health verdicts never fails over.
                log(f"failover {key}: {e}")
                result["note"] = (
                    f"{key} not measured: {e} (does `gtm-operator local` run health checks in this build?)"
                )
            interval = f"{interval_ms} ms" if interval_ms else "1 s"
            result[f"{key}_settings"] = (
                f"TCP check interval {interval}, timeout {timeout_ms} ms, failure/success threshold 1"
            )
            stop(operator)
            stop(pod)
            for b in kb.values():
                stop(b)
        self.results["sections"][section] = result

    def failover_trials(self, section, name, port, fqdn, backends, primary, secondary, backend_port, trials):
        """Out: the primary has left the answer and the secondary answers; back: the primary is
        answered again (alone, or among the answers of a server that answers every live one)."""
        dns = Dns(port)
        # Up from the start: the primary answers (health verdicts may take a few intervals).
        wait_answer(dns, fqdn, lambda v: primary in v, 30, interval=0.01)
        time.sleep(3)
        down, up = [], []
        for i in range(trials):
            time.sleep(random.uniform(0.5, 1.5))
            t0 = time.monotonic()
            stop(backends[primary], sig=signal.SIGKILL)
            t1 = wait_answer(dns, fqdn, lambda v: v == [secondary], 30, interval=0.005)
            down.append(t1 - t0)
            time.sleep(random.uniform(0.5, 1.5))
            t0 = time.monotonic()
            backends[primary] = start_backend(section, primary, backend_port)
            t1 = wait_answer(dns, fqdn, lambda v: primary in v, 30, interval=0.005)
            up.append(t1 - t0)
            log(f"failover {name} trial {i + 1}: out after {down[-1]:.2f} s, back after {up[-1]:.2f} s")
        dns.close()
        return {
            "out_s": down,
            "back_s": up,
            "out_median": statistics.median(down),
            "out_max": max(down),
            "back_median": statistics.median(up),
            "back_max": max(up),
        }

    # -----------------------------------------------------------------------------------------
    # 5. Prober CPU

    def prober(self):
        """The prober's CPU for 10 000 tasks at 1 s, and for 1 000 at 100 ms (as many probes a
        second, sub-second): what a probe costs, and whether the interval changes it."""
        section = "prober"
        seconds = "10" if self.quick else "30"
        runs = {}
        for key, tasks, interval_ms in (("1s", "10000", "1000"), ("100ms", "1000", "100")):
            argv = ["cargo", "run", "--release", "-q", "-p", "gtm-prober", "--example", "load",
                    "--", tasks, seconds, interval_ms]
            record(section, argv)
            out = subprocess.run(argv, cwd=self.args.root, capture_output=True, text=True, check=True)
            text = out.stdout.strip()
            m = re.search(r"prober CPU: ([^\n]*)", text)
            share = re.search(r"([0-9.]+)\s*%", m.group(1)) if m else None
            per = re.search(r"prober CPU per probe: ([0-9.]+)", text)
            log(f"prober {key}: " + (m.group(1) if m else text))
            runs[key] = {
                "output": text,
                "cpu_percent": float(share.group(1)) if share else None,
                "per_probe_us": float(per.group(1)) if per else None,
            }
        self.results["sections"][section] = {**runs["1s"], "runs": runs}

    # -----------------------------------------------------------------------------------------
    # Cluster mode against a real kube-apiserver (bench/cluster.py)

    def cluster(self):
        import cluster  # noqa: PLC0415 - beside this file

        self.results["sections"]["cluster"] = cluster.run(self)

    # -----------------------------------------------------------------------------------------
    # A UDP flood with response rate limiting on and off (bench/flood.py)

    def flood(self):
        import flood  # noqa: PLC0415 - beside this file

        self.results["sections"]["flood"] = flood.run(self)

    # -----------------------------------------------------------------------------------------
    # Signed answers against unsigned (bench/dnssec.py)

    def dnssec(self):
        import dnssec  # noqa: PLC0415 - beside this file

        self.results["sections"]["dnssec"] = dnssec.run(self)


# ---------------------------------------------------------------------------------------------
# Parsing and helpers


def http_ok(url):
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status == 200
    except Exception:  # noqa: BLE001 - not up yet
        return False


def metric_value(http_port, series):
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(series + " "):
                return float(line.split()[-1])
    return None


def wakeups(pid, seconds):
    """Context switches per second of the threads of `pid` over `seconds`, summed by thread name
    (idle: each is a wake-up by a timer, a poll or another thread)."""

    def snap():
        counts = {}
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                name = open(f"/proc/{pid}/task/{tid}/comm").read().strip()
                status = open(f"/proc/{pid}/task/{tid}/status").read()
            except OSError:
                continue
            switches = sum(int(n) for n in re.findall(r"^(?:non)?voluntary_ctxt_switches:\s+(\d+)", status, re.M))
            counts[tid] = (name, switches)
        return counts

    before = snap()
    time.sleep(seconds)
    per_name = {}
    for tid, (name, n) in snap().items():
        if tid in before:
            per_name[name] = per_name.get(name, 0) + (n - before[tid][1]) / seconds
    return per_name


def parse_dnsperf(path):
    """dnsperf's summary, plus p50, p99 and p99.9 from the per-response latencies of -v when
    present."""
    latencies = []
    summary_lines = []
    with open(path) as f:
        for line in f:
            # -v lines: "> NOERROR www.gtm.example.com A 0.000123"
            if line.startswith("> "):
                parts = line.split()
                if len(parts) >= 2 and parts[1] != "T":
                    try:
                        latencies.append(float(parts[-1]))
                    except ValueError:
                        pass
            else:
                summary_lines.append(line)
    text = "".join(summary_lines)

    def grab(pattern, cast=float):
        m = re.search(pattern, text)
        if not m:
            raise RuntimeError(f"dnsperf output {path} lacks {pattern!r}:\n{text[-2000:]}")
        return cast(m.group(1))

    rcodes = dict(
        (k, int(v)) for k, v in re.findall(r"([A-Z]+) (\d+) \([0-9.]+%\)", text.split("Response codes:", 1)[-1].split("\n")[0])
    )
    res = {
        "sent": grab(r"Queries sent:\s+(\d+)", int),
        "completed": grab(r"Queries completed:\s+(\d+)", int),
        "lost": grab(r"Queries lost:\s+(\d+)", int),
        "qps": grab(r"Queries per second:\s+([0-9.]+)"),
        "avg_ms": grab(r"Average Latency \(s\):\s+([0-9.]+)") * 1000,
        "rcodes": rcodes,
    }
    if latencies:
        latencies.sort()
        for key, q in (("p50_ms", 0.50), ("p99_ms", 0.99), ("p999_ms", 0.999)):
            res[key] = latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
        res["samples"] = len(latencies)
    else:
        res["p50_ms"] = res["p99_ms"] = res["p999_ms"] = float("nan")
    return res


def in_turn(servers, rep):
    """The servers in the order they take their turns in round `rep`: rotated by one a round, so
    that no server always runs first (right after the previous mix's runs) or in any one place."""
    names = list(servers)
    k = rep % len(names)
    return [(name, servers[name]) for name in names[k:] + names[:k]]


def steady_median(runs):
    """The median of each percentile over the runs at the steady rate, and the runs themselves."""
    return {k: statistics.median(r[k] for r in runs) for k in STEADY_KEYS} | {"runs": runs}


def slug(mix):
    return re.sub(r"[^A-Za-z0-9]+", "-", mix)


def summary(samples):
    s = sorted(samples)

    def pct(p):
        return s[min(len(s) - 1, max(0, int(round(p / 100 * len(s) + 0.5)) - 1))]  # nearest rank

    return {"n": len(s), "p50": pct(50), "p99": pct(99), "max": s[-1], "min": s[0], "samples": samples}


def generate_scale_manifests(directory, domains, per_pool):
    """`domains` domains, each with one Weighted pool of `per_pool` loopback addresses, one TCP
    template; 1 000 domains per file. The pool of `d0` is Sequential (its addresses in order),
    so that one verdict moves its answer: SCALE_FLIP_ADDRESS, first, answers while it is up."""
    tmpl = template_yaml("tcp", 5, 2000, 3, 1)
    n = 0
    for start_i in range(0, domains, 1000):
        parts = [tmpl] if start_i == 0 else []
        for d in range(start_i, min(domains, start_i + 1000)):
            addrs = []
            for i in range(per_pool):
                order = i + 1 if d == 0 else 1
                addrs.append((f"127.{1 + n // 65536}.{(n // 256) % 256}.{n % 256}", 1 + n % 5, order, None))
                n += 1
            policy = "Sequential" if d == 0 else "Weighted"
            parts.append(pool_yaml(f"p{d}", policy, addrs, "tcp", 8080))
            parts.append(domain_yaml(f"d{d}", f"d{d}.{ZONE}", 30, [f"p{d}"]))
        with open(os.path.join(directory, f"scale-{start_i // 1000:03d}.yaml"), "w") as f:
            f.write(docs(*parts))


# The first address of the scale manifests' `d0` pool, and the one answered while it is down.
SCALE_FLIP_ADDRESS = "127.1.0.0"
SCALE_FLIP_STANDBY = "127.1.0.1"


def first_line(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        text = (out.stdout or out.stderr).strip()
        return text.splitlines()[0] if text else "?"
    except Exception:  # noqa: BLE001
        return "?"


def source_version(root):
    """`git describe` of the tree measured; BENCH_SOURCE where it is no git checkout."""
    out = subprocess.run(
        ["git", "-C", root, "describe", "--always", "--dirty"], capture_output=True, text=True
    )
    if out.returncode == 0:
        return "commit " + out.stdout.strip()
    return os.environ.get("BENCH_SOURCE", "unknown (not a git checkout)")


def package_version(name):
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name], capture_output=True, text=True)
    return f"{name} {out.stdout.strip()}" if out.returncode == 0 else f"{name} (version unknown)"


def dnsperf_version():
    out = subprocess.run(["dnsperf", "-h"], capture_output=True, text=True)
    m = re.search(r"Version ([0-9.]+)", out.stdout + out.stderr)
    return "dnsperf " + (m.group(1) if m else "?")


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "loadavg": open("/proc/loadavg").read().split()[:3],
    }


# ---------------------------------------------------------------------------------------------


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "listen":
        listen_forever(sys.argv[2])
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", required=True)
    p.add_argument("--bin", required=True, help="directory of the release binaries")
    p.add_argument("--scale-bin", required=True, help="the gtm-bench-scale helper")
    p.add_argument("--out", help="Markdown report to write")
    p.add_argument("--json", help="raw results to write")
    p.add_argument("--quick", action="store_true", help="short runs, to try the suite out")
    p.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    p.add_argument("--outstanding", type=int, default=32, help="dnsperf -q: queries in flight")
    p.add_argument("--clients", type=int, default=8, help="dnsperf -c: client sockets (TCP connections)")
    p.add_argument("--seconds", type=int, default=10, help="length of each throughput run")
    p.add_argument("--saturation-rounds", type=int, default=3,
                   help="rounds of the full-load runs (0: none, and no profiles)")
    p.add_argument("--mixes", help="comma-separated subset of the throughput mixes (default: all)")
    p.add_argument("--baseline-bin",
                   help="directory of another gtm-dnspod build, measured beside as kube-gtm-baseline")
    p.add_argument("--knot-control", action="store_true",
                   help="measure a second Knot beside, as knot-control: Knot against itself, the noise floor")
    p.add_argument("--steady-rounds", type=int, default=5,
                   help="rounds of the runs at a steady 1 000 queries/s (the servers take turns)")
    args = p.parse_args()
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    bench = Bench(args)
    bench.results["started"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    bench.results["machine_before"] = machine()
    bench.results["versions"] = {
        "kube-gtm": source_version(args.root),
        "rustc": first_line(["rustc", "-V"]),
    }
    bench.results["cores"] = {"load_generator": bench.load_core, "server": bench.server_core}
    log(f"work directory {bench.work}; load generator on core {bench.load_core}, server on core {bench.server_core}")
    try:
        for section in args.only.split(","):
            section = section.strip()
            if section not in SECTIONS:
                raise SystemExit(f"unknown section {section}")
            log(f"== {section}")
            getattr(bench, section)()
            bench.results["commands"] = COMMANDS
            if args.json:
                with open(args.json, "w") as f:
                    json.dump(bench.results, f, indent=1)
    finally:
        stop_all()
    bench.results["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    bench.results["machine_after"] = machine()
    bench.results["commands"] = COMMANDS
    if args.json:
        with open(args.json, "w") as f:
            json.dump(bench.results, f, indent=1)
    if args.out:
        import report  # noqa: PLC0415 - beside this file

        with open(args.out, "w") as f:
            f.write(report.render(bench.results))
        log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
