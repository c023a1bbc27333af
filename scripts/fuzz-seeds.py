#!/usr/bin/env python3
"""Writes the committed seed corpus of the fuzz targets (fuzz/seeds/<target>/): real queries for
the DNS targets (plain, EDNS, Client Subnet, several types and names of the examples), the
examples' payloads, and the example manifests. Run from the repository root; idempotent."""
import json
import pathlib
import shutil
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
SEEDS = ROOT / "fuzz" / "seeds"
TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "TXT": 16, "AAAA": 28, "AXFR": 252, "ANY": 255}


def name(text):
    out = b""
    for label in text.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def query(qname, qtype, ident=0x1234, edns=None, ecs=None):
    """A query; edns is the advertised payload size, ecs (family, prefix, address bytes)."""
    additional = 1 if edns is not None else 0
    msg = struct.pack(">HHHHHH", ident, 0x0000, 1, 0, 0, additional)
    msg += name(qname) + struct.pack(">HH", TYPES[qtype], 1)
    if edns is not None:
        options = b""
        if ecs is not None:
            family, prefix, address = ecs
            data = struct.pack(">HBB", family, prefix, 0) + address
            options += struct.pack(">HH", 8, len(data)) + data
        msg += b"\0" + struct.pack(">HHIH", 41, edns, 0, len(options)) + options
    return msg


QUERIES = {
    "a-plain": query("app.gtm.example.com", "A"),
    "a-weighted": query("shop.gtm.example.com", "A"),
    "aaaa": query("app.gtm.example.com", "AAAA"),
    "cname": query("www.gtm.example.com", "CNAME"),
    "soa-apex": query("gtm.example.com", "SOA"),
    "ns-apex": query("gtm.example.com", "NS"),
    "nxdomain": query("nope.gtm.example.com", "A"),
    "refused": query("example.org", "A"),
    "any": query("app.gtm.example.com", "ANY"),
    "axfr": query("gtm.example.com", "AXFR"),
    "txt-upper": query("APP.GTM.EXAMPLE.COM", "TXT"),
    "edns-4096": query("app.gtm.example.com", "A", edns=4096),
    "ecs-v4": query("portal.gtm.example.com", "A", edns=1232, ecs=(1, 24, bytes([203, 0, 113]))),
    "ecs-v6": query("video.gtm.example.com", "A", edns=1232, ecs=(2, 48, bytes.fromhex("20010db80001"))),
    "ecs-zero": query("portal.gtm.example.com", "A", edns=1232, ecs=(1, 0, b"")),
    "short": bytes(11),
}


def write(target, stem, data):
    directory = SEEDS / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / stem).write_bytes(data)


def main():
    if SEEDS.exists():
        shutil.rmtree(SEEDS)
    for stem, data in QUERIES.items():
        write("dns_udp", stem, data)
        write("dns_tcp", stem, struct.pack(">H", len(data)) + data)
    # Pipelined: several messages on one connection.
    write("dns_tcp", "pipelined", b"".join(struct.pack(">H", len(q)) + q for q in QUERIES.values()))
    fixtures = ROOT / "fuzz" / "fixtures"
    for payload in ("config.json", "health.json"):
        write("payload", payload, (fixtures / payload).read_bytes())
    for manifest in sorted((ROOT / "examples").glob("*.yaml")):
        write("manifests", manifest.name, manifest.read_bytes())
    for invalid in sorted((ROOT / "crds" / "tests" / "invalid").glob("*.yaml"))[:8]:
        write("manifests", "invalid-" + invalid.name, invalid.read_bytes())
    # location_reports: a location's verdicts and heartbeat, as gtm-prober writes them.
    write("location_reports", "verdicts.json",
          b'{"schemaVersion":"1.1","location":"eu","generation":3,"up":["default/http@127.0.10.1#8080"],'
          b'"down":["default/http@127.0.10.2#8080","default/tcp@127.0.30.1#8443"]}')
    write("location_reports", "heartbeat.json",
          b'{"schemaVersion":"1.1","location":"eu","labels":{"region":"eu"},'
          b'"observedTime":"2026-01-01T00:00:00Z","intervalSeconds":10}')
    # parts: arbitrary's encoding is not stable to write by hand; libFuzzer starts from a
    # small payload written as plain bytes, which it mutates into structure.
    write("parts", "config", (fixtures / "config.json").read_bytes()[:512])
    print(f"seeds written to {SEEDS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
