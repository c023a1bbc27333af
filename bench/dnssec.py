"""The `dnssec` section of bench.py: the cost of signed answers, signed against unsigned, side
by side in one run.

One `gtm-dnspod` pinned to the server core serves two zones with the same access domain
(`www`, RoundRobin over two always-online addresses): gtm.example.com unsigned and
signed.example.com signed online (ECDSA P-256, a key made by `openssl genpkey`). dnsperf on the
load-generator core sends every query with EDNS and the DO bit (`-D`), in four mixes per zone:
the positive answer (its signature cached), NODATA (`AAAA`, the NSEC proof cached), NXDOMAIN
over 100 000 distinct names (a signature made per query), and 90/10 (positive, with one
NXDOMAIN and one NODATA in twenty). The unsigned zone's answers take the fast path (it takes
EDNS and DO); a DO query in the signed zone takes the full path, which signs. Reported: queries
per second per server core (queries per second over the server's CPU share), median of 3 runs,
and signed / unsigned.
"""

import os
import statistics
import subprocess
import sys
import time

SECTION = "dnssec"
UNSIGNED = "gtm.example.com"
SIGNED = "signed.example.com"
NX_NAMES = 100_000


def manifests():
    """The signed zone's GtmZone and one `www` domain per zone over one pool."""
    docs = [
        "apiVersion: gtm.kubegtm.io/v1alpha1\nkind: GtmZone\nmetadata:\n  name: signed\n"
        f"spec:\n  zone: {SIGNED}\n  dnssec:\n    algorithm: ECDSAP256SHA256\n",
        "apiVersion: gtm.kubegtm.io/v1alpha1\nkind: AddressPool\nmetadata:\n  name: web\n"
        "spec:\n  type: IPv4\n  policy: RoundRobin\n  addresses:\n"
        "    - {value: 192.0.2.1, mode: AlwaysOnline}\n    - {value: 192.0.2.2, mode: AlwaysOnline}\n",
    ]
    for name, zone in (("www-unsigned", UNSIGNED), ("www-signed", SIGNED)):
        docs.append(
            f"apiVersion: gtm.kubegtm.io/v1alpha1\nkind: GtmAccessDomain\nmetadata:\n  name: {name}\n"
            f"spec:\n  domain: www.{zone}\n  recordType: A\n  ttl: 30\n  policy: RoundRobin\n"
            "  pools:\n    - name: web\n"
        )
    return "---\n".join(docs)


def query_files(bench, zone):
    """The four mixes' query files for `zone`."""
    files = {mix: bench.path(SECTION, f"{zone}-{mix}.txt") for mix in ("positive", "nodata", "nxdomain", "90/10")}
    with open(files["positive"], "w") as f:
        f.write(f"www.{zone} A\n" * 1000)
    with open(files["nodata"], "w") as f:
        f.write(f"www.{zone} AAAA\n" * 1000)
    with open(files["nxdomain"], "w") as f:
        f.writelines(f"nx{i}.{zone} A\n" for i in range(NX_NAMES))
    with open(files["90/10"], "w") as f:
        for i in range(1000):
            if i % 20 == 9:
                f.write(f"nx{i}.{zone} A\n")
            elif i % 20 == 19:
                f.write(f"www.{zone} AAAA\n")
            else:
                f.write(f"www.{zone} A\n")
    return files


def run(bench):
    """Runs the section for bench.py's `Bench`; returns its results."""
    h = sys.modules[type(bench).__module__]
    seconds = 3 if bench.quick else 10
    manifest_dir, output = bench.path(SECTION, "manifests"), bench.path(SECTION, "output")
    os.makedirs(manifest_dir, exist_ok=True)
    os.makedirs(os.path.join(output, "dnssec"), exist_ok=True)
    with open(os.path.join(manifest_dir, "zones.yaml"), "w") as f:
        f.write(manifests())
    key = os.path.join(output, "dnssec", f"{SIGNED}.key")
    argv = ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key]
    h.record(SECTION, argv)
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    operator = bench.start_operator(SECTION, manifest_dir, output, zones=(UNSIGNED, SIGNED))
    proc, port, _, _ = bench.start_dnspod(SECTION, output, core=bench.server_core)
    try:
        # Both zones answer, the signed one with its signature, before anything is measured.
        def answers_signed():
            out = subprocess.run(
                ["dig", "@127.0.0.1", "-p", str(port), f"www.{SIGNED}", "A", "+dnssec", "+norec"],
                capture_output=True, text=True, check=False,
            ).stdout
            return "RRSIG" in out

        h.wait_until("signed answers", answers_signed, timeout=60)
        files = {zone: query_files(bench, zone) for zone in (UNSIGNED, SIGNED)}
        runs = {}
        for rep in range(1 if bench.quick else 3):
            for mix in files[UNSIGNED]:
                for label, zone in (("unsigned", UNSIGNED), ("signed", SIGNED)):
                    t0, c0 = time.monotonic(), h.cpu_ticks(proc.pid)
                    res = bench.dnsperf(SECTION, port, files[zone][mix], seconds, bench.args.outstanding, extra=["-D"])
                    t1, c1 = time.monotonic(), h.cpu_ticks(proc.pid)
                    share = (c1 - c0) / h.CLK_TCK / (t1 - t0)
                    res["cpu_share"] = share
                    res["qps_per_core"] = res["qps"] / share if share else None
                    h.log(
                        f"dnssec {mix:8} {label:8} run {rep + 1}: {res['qps']:.0f} qps, cpu {share:.2f},"
                        f" {res['qps_per_core'] or 0:.0f} qps/core, lost {res['lost']}"
                    )
                    runs.setdefault(mix, {}).setdefault(label, []).append(res)
        table = {
            mix: {
                label: {k: statistics.median(r[k] for r in rs) for k in ("qps", "qps_per_core", "cpu_share", "avg_ms", "lost")}
                | {"rcodes": rs[-1]["rcodes"]}
                for label, rs in per.items()
            }
            for mix, per in runs.items()
        }
        return {"seconds": seconds, "outstanding": bench.args.outstanding, "table": table, "runs": runs}
    finally:
        h.stop(proc)
        h.stop(operator)


def report(r):
    """The section's Markdown lines."""
    out = [
        "## DNSSEC: signed answers against unsigned\n",
        f"One `gtm-dnspod` on its own core serves `www` in an unsigned zone and in a zone signed "
        f"online (ECDSA P-256); dnsperf sends every query with the DO bit, {r['seconds']} s per run, "
        f"{r['outstanding']} outstanding, median of {len(next(iter(r['runs'].values()))['signed'])} "
        "runs. The unsigned answers take the fast path, the signed ones the full path. Positive and "
        "NODATA answers reuse cached signatures; each NXDOMAIN (100 000 distinct names) is signed as "
        "it is asked (compact denial: one NSEC and its signature).\n",
        "| mix | unsigned, qps per core | signed, qps per core | signed / unsigned |",
        "|---|---:|---:|---:|",
    ]
    for mix, per in r["table"].items():
        u, s = per["unsigned"]["qps_per_core"], per["signed"]["qps_per_core"]
        ratio = f"{s / u:.2f}" if u and s else "-"
        out.append(f"| {mix} | {u or 0:.0f} | {s or 0:.0f} | {ratio} |")
    out.append("")
    return out
