"""The `flood` section of bench.py: a UDP flood from one source, with response rate limiting
(RRL) on (the default) and off.

The flood source (127.0.0.1, one socket, pinned to the load-generator core) sends EDNS queries
advertising 4096 bytes for the largest answer a domain can have (64 AAAA records,
`maxAnswers: 64`) as fast as one Python process can, for a bounded time. Meanwhile two
legitimate clients ask for an ordinary name 50 times a second each, the way a resolver does
(wait up to 1 s, retry over TCP on a truncated answer): one from another /24 (127.0.1.1), one
from the flood's own /24 (127.0.0.2), which shares its rate. Measured per mode: queries and
responses per second to the flood source, bytes out / bytes in (the amplification factor a
spoofed victim would see), the responses rate limiting dropped and slipped, and the legitimate
clients' success rate. Loopback only; every process is stopped by bench.py.

`python3 flood.py blast PORT NAME SECONDS` is the flood source itself (prints JSON).
"""

import json
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time

SECTION = "flood"
ZONE = "gtm.example.com"
BIG = f"big.{ZONE}"
WWW = f"www.{ZONE}"
EDNS_PAYLOAD = 4096
LEGIT_INTERVAL = 0.02  # 50 queries per second per legitimate client
AAAA, A = 28, 1


def manifests():
    """64 IPv6 addresses answered whole by `big` (AAAA), one IPv4 address by `www` (A)."""
    v6 = "".join(f"    - value: 2001:db8::{i:x}\n" for i in range(1, 65))
    return "---\n".join(
        [
            "apiVersion: gtm.kubegtm.io/v1alpha1\nkind: AddressPool\nmetadata:\n  name: big\n"
            f"spec:\n  type: IPv6\n  policy: RoundRobin\n  addresses:\n{v6}",
            "apiVersion: gtm.kubegtm.io/v1alpha1\nkind: GtmAccessDomain\nmetadata:\n  name: big\n"
            f"spec:\n  domain: {BIG}\n  recordType: AAAA\n  ttl: 30\n  maxAnswers: 64\n"
            "  pools:\n    - name: big\n",
            "apiVersion: gtm.kubegtm.io/v1alpha1\nkind: AddressPool\nmetadata:\n  name: www\n"
            "spec:\n  type: IPv4\n  addresses:\n    - value: 192.0.2.1\n",
            "apiVersion: gtm.kubegtm.io/v1alpha1\nkind: GtmAccessDomain\nmetadata:\n  name: www\n"
            f"spec:\n  domain: {WWW}\n  recordType: A\n  ttl: 30\n  pools:\n    - name: www\n",
        ]
    )


def query(name, qtype, qid, edns):
    """A query in wire form, with an OPT record advertising EDNS_PAYLOAD when `edns`."""
    wire = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 1 if edns else 0)
    for label in name.split("."):
        wire += bytes([len(label)]) + label.encode()
    wire += b"\0" + struct.pack(">HH", qtype, 1)
    if edns:
        wire += b"\0" + struct.pack(">HHIH", 41, EDNS_PAYLOAD, 0, 0)
    return wire


def blast(port, name, seconds):
    """The flood source: sends for `seconds` while a forked child counts what comes back on the
    same socket (no lock shared with the sender); returns the counts."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), 32 << 20)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
    started = time.monotonic()
    deadline = started + seconds
    read_end, write_end = os.pipe()
    if os.fork() == 0:
        os.close(read_end)
        counts = {"received": 0, "received_bytes": 0, "empty": 0}
        sock.settimeout(0.2)
        while time.monotonic() < deadline + 0.5:
            try:
                data = sock.recv(65535)
            except socket.timeout:
                continue
            counts["received"] += 1
            counts["received_bytes"] += len(data)
            if len(data) > 7 and data[6:8] == b"\0\0":
                counts["empty"] += 1
        os.write(write_end, json.dumps(counts).encode())
        os._exit(0)
    os.close(write_end)
    counts = {"sent": 0, "sent_bytes": 0}
    packets = [query(name, AAAA, i, True) for i in range(1024)]
    i = 0
    while time.monotonic() < deadline:
        for _ in range(64):
            packet = packets[i & 1023]
            i += 1
            try:
                sock.sendto(packet, ("127.0.0.1", port))
            except OSError:
                continue
            counts["sent"] += 1
            counts["sent_bytes"] += len(packet)
    counts["seconds"] = time.monotonic() - started
    with os.fdopen(read_end) as f:
        counts.update(json.loads(f.read()))
    os.wait()
    return counts


class LegitClient(threading.Thread):
    """Asks `www` every LEGIT_INTERVAL from `source` until stopped, as a resolver would."""

    def __init__(self, port, source):
        super().__init__()
        self.port, self.source = port, source
        self.stop = threading.Event()
        self.asked = self.answered = self.over_tcp = 0

    def run(self):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind((self.source, 0))
        udp.settimeout(1.0)
        while not self.stop.is_set():
            qid = random.randrange(65536)
            wire = query(WWW, A, qid, True)
            self.asked += 1
            try:
                udp.sendto(wire, ("127.0.0.1", self.port))
                while True:
                    data = udp.recv(65535)
                    if struct.unpack(">H", data[:2])[0] == qid:
                        break
                if data[2] & 0x02:
                    self.over_tcp += 1
                    data = self.tcp(wire)
                if struct.unpack(">H", data[6:8])[0] >= 1:
                    self.answered += 1
            except OSError:
                pass  # lost: the resolver would try another server
            self.stop.wait(LEGIT_INTERVAL)

    def tcp(self, wire):
        with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as s:
            s.sendall(struct.pack(">H", len(wire)) + wire)
            length = struct.unpack(">H", recv_exact(s, 2))[0]
            return recv_exact(s, length)


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return data


def measure(h, bench, port, http_port, seconds):
    """One flood with the two legitimate clients beside it."""
    clients = {"other_prefix": LegitClient(port, "127.0.1.1"), "same_prefix": LegitClient(port, "127.0.0.2")}
    for c in clients.values():
        c.start()
    argv = h.pinned(bench.load_core, [sys.executable, os.path.abspath(__file__), "blast", str(port), BIG, str(seconds)])
    h.record(SECTION, argv)
    try:
        flood = json.loads(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)
    finally:
        for c in clients.values():
            c.stop.set()
            c.join()
    secs = flood["seconds"]
    return {
        "seconds": round(secs, 2),
        "queries_per_second": round(flood["sent"] / secs),
        "responses_per_second": round(flood["received"] / secs),
        "response_bytes": flood["received_bytes"],
        "query_bytes": flood["sent_bytes"],
        "amplification": round(flood["received_bytes"] / max(flood["sent_bytes"], 1), 2),
        "response_size": round(flood["received_bytes"] / max(flood["received"], 1)),
        "query_size": round(flood["sent_bytes"] / max(flood["sent"], 1)),
        "empty_per_second": round(flood["empty"] / secs),
        "rrl_dropped": h.metric_value(http_port, "gtm_dnspod_rrl_dropped_total") or 0,
        "rrl_slipped": h.metric_value(http_port, "gtm_dnspod_rrl_slipped_total") or 0,
        "legitimate": {
            k: {"asked": c.asked, "answered": c.answered, "over_tcp": c.over_tcp} for k, c in clients.items()
        },
    }


def run(bench):
    """Runs the section for bench.py's `Bench`; returns its results."""
    h = sys.modules[type(bench).__module__]
    seconds = 3 if bench.quick else 8
    manifest_dir, output = bench.path(SECTION, "manifests"), bench.path(SECTION, "output")
    os.makedirs(manifest_dir, exist_ok=True)
    os.makedirs(output, exist_ok=True)
    with open(os.path.join(manifest_dir, "flood.yaml"), "w") as f:
        f.write(manifests())
    operator = bench.start_operator(SECTION, manifest_dir, output)
    results = {"seconds": seconds, "edns_payload": EDNS_PAYLOAD}
    try:
        for mode, rrl in (("rrl_on", True), ("rrl_off", False)):
            proc, port, http_port, _ = bench.start_dnspod(
                SECTION, output, core=bench.server_core, log_name=f"dnspod-{mode}.log", rrl=rrl
            )
            h.log(f"flood: {mode}, {seconds} s")
            try:
                results[mode] = measure(h, bench, port, http_port, seconds)
            finally:
                h.stop(proc)
    finally:
        h.stop(operator)
    return results


def report(r):
    """The section's Markdown lines."""
    on, off = r["rrl_on"], r["rrl_off"]

    def legit(m, k):
        c = m["legitimate"][k]
        share = 100.0 * c["answered"] / max(c["asked"], 1)
        return f"{share:.1f} % of {c['asked']} ({c['over_tcp']} over TCP after TC)"

    rows = [
        ("queries per second from the flood source", "queries_per_second"),
        ("responses per second to it", "responses_per_second"),
        ("of them empty and truncated (slipped)", "empty_per_second"),
        ("mean response size, bytes (query: {q})", "response_size"),
        ("bytes out / bytes in (amplification)", "amplification"),
        ("responses dropped by rate limiting", "rrl_dropped"),
    ]
    out = [
        "## Flood (amplification and response rate limiting)\n",
        f"One source (127.0.0.1, one Python process on the load-generator core) sends EDNS queries "
        f"advertising {r['edns_payload']} bytes for the largest answer a domain can have (64 AAAA "
        f"records, `maxAnswers: 64`) as fast as it can for {r['seconds']} s, while two legitimate "
        "clients ask for a one-address name 50 times a second each, retrying over TCP on a truncated "
        "answer: one from another /24, one from the flood's own /24. `gtm-dnspod` on its own core with "
        "default flags (UDP responses capped at 1232 bytes; rate limiting 200/s, burst 200, slip 2 per "
        "/24), then with `--rrl-rate 0`.\n",
        "| | rate limiting on (default) | off |",
        "|---|---|---|",
    ]
    label = {"q": on["query_size"]}
    out += [f"| {text.format(**label)} | {on[key]:g} | {off[key]:g} |" for text, key in rows]
    out += [
        f"| legitimate client, other /24: answered | {legit(on, 'other_prefix')} | {legit(off, 'other_prefix')} |",
        f"| legitimate client, the flood's /24: answered | {legit(on, 'same_prefix')} | {legit(off, 'same_prefix')} |",
        "",
    ]
    return out


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "blast":
        print(json.dumps(blast(int(sys.argv[2]), sys.argv[3], float(sys.argv[4]))))
    else:
        raise SystemExit(__doc__)
