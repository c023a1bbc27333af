"""Renders the results of bench.py as docs/benchmarks.md."""

import os
import statistics

HERE = os.path.dirname(os.path.abspath(__file__))


# What the profiles of the DNS pod at the steady rate showed (bench/findings.md has the figures).
PROBING_PROSE = (
    "The prober runs in the operator, never in the DNS pod, which sees a verdict only as a changed "
    "`health.json`, parsed and swapped in on the reload thread. Profiled at 1,000 queries/s beside "
    "Knot (bench/findings.md): the UDP thread is the only thread of the pod that runs per query and "
    "is woken with no scheduling delay (`perf sched`); the pod's other threads (runtime worker, file "
    "watcher, reload thread) ran under half a millisecond in 3 s together, woken by the operator's "
    "`status.json` writes; no page faults or migrations while answering (`perf stat`); the time per "
    "query is the kernel's, going to sleep in `recvmmsg` and waking the client from `sendmmsg`, as "
    "Knot's is (`perf record`), with gtm-dnspod's own code 8 % of the samples (Knot's 15 %). The UDP thread sleeps with no "
    "timeout (shutdown wakes it by shutting the socket's reading side), so an idle pod is woken only "
    "by its file watcher and runtime. Where probing meets the answer path is the machine, not the "
    "pod: the probes' connects and the backends' accepts are kernel and process work on whichever "
    "core is free, the server's included.\n"
)


def steady_run(r):
    return (
        f"{r['p50_ms']:.3f} / {r['p99_ms']:.3f} / {r['p999_ms']:.3f}"
        + (f", load {r['loadavg']:.2f}" if "loadavg" in r else "")
    )


def fmt(value, digits=0):
    if value is None or value != value:  # None or NaN
        return "n/a"
    return f"{value:,.{digits}f}"


def ratio(a, b):
    return f"{a / b:.2f}" if a and b else "n/a"


def verdict(ok):
    if ok is None:
        return "not measured"
    return "**met**" if ok else "**missed**"


def p99_comparisons(t, name, reference="knot"):
    """(label, p99 of `name`, p99 of `reference`) for every mix, at full load and at the steady
    rate: the comparisons the tail goal makes."""
    rows = [(f"{mix}, at full load", r[name]["p99_ms"], r[reference]["p99_ms"]) for mix, r in t["table"].items()]
    rows += [
        (f"{mix}, at {fmt(t['steady_qps'])} QPS", r[name]["p99_ms"], r[reference]["p99_ms"])
        for mix, r in t.get("steady", {}).items()
    ]
    return rows


def render_noise_floor(w, t):
    """Knot against a second Knot configured alike (`--knot-control`), compared as the tail
    goal compares kube-gtm with Knot: how often a server is "at or below" itself."""
    if not any("knot-control" in rows for per_mix in (t["table"], t.get("steady", {})) for rows in per_mix.values()):
        return
    control = p99_comparisons(t, "knot-control")
    gtm = {label: (k, kn) for label, k, kn in p99_comparisons(t, "kube-gtm")}
    w(
        "**The noise floor: Knot against itself.** A second knotd, configured as the first and measured "
        "in turns with the others (`--knot-control`), compared with Knot as the tail goal compares "
        "kube-gtm (p99, medians of the runs):\n"
    )
    w("| mix | knot-control / knot p99 | at or below | kube-gtm / knot p99 | at or below |")
    w("|---|---|---|---|---|")
    for label, c, kn in control:
        k, _ = gtm[label]
        w(
            f"| {label} | {fmt(c, 3)} / {fmt(kn, 3)} ms | {'yes' if c <= kn else 'no'} | "
            f"{fmt(k, 3)} / {fmt(kn, 3)} ms | {'yes' if k <= kn else 'no'} |"
        )
    held = sum(c <= kn for _, c, kn in control)
    gtm_held = sum(k <= kn for k, kn in gtm.values())
    w(
        f"\nKnot is at or below itself on {held} of {len(control)} comparisons; kube-gtm is at or "
        f"below Knot on {gtm_held} of {len(gtm)}.\n"
    )


def render_throughput(w, t):
    w("## 1. DNS throughput and latency\n")
    w(
        "Each server answers `www.gtm.example.com` on 127.0.0.1, pinned to one core, while dnsperf "
        f"runs on the other for {t['seconds']} s with {t['outstanding']} queries in flight (`-q`) over "
        f"{t.get('clients', 1)} client sockets (`-c`); median of "
        f"{max((x['runs'] for rows in t['table'].values() for x in rows.values()), default=0)} runs, the servers "
        "taking turns in an order rotated by one each round. kube-gtm: a `Weighted` pool of 3 addresses (weights 3:2:1) with a TCP health "
        "check every second (the operator's prober, on the load generator's core), compiled by "
        "`gtm-operator local`, one address per answer. gdnsd: the `weighted` plugin with the same "
        "addresses and weights, `multi => false`, `tcp_connect` monitors every 2 s (its shortest) "
        "inside the server process. Knot: a static zone with one A record (the raw-speed reference), "
        "`edns-client-subnet: on`. Server CPU is the server process's user + system time over the "
        "run's wall time (from `/proc/<pid>/stat`), so 1.00 is one core fully used; QPS per core is "
        "QPS / server CPU. Latency percentiles are computed from dnsperf's per-response latencies "
        "(`-v`, a second run with the same settings).\n"
    )
    w("Mixes (dnsperf arguments):\n")
    notes = {
        "plain": "every query `www A`, no EDNS",
        "EDNS": "the same with an OPT record (payload 4096)",
        "EDNS+DO": "the same with the DO bit",
        "ECS": "the same with a Client Subnet option, 10.1.2.0/24",
        "90/10": "EDNS; 90 % `www A`, 5 % NXDOMAIN (`nxN A`), 5 % NODATA (`www AAAA`)",
        "TCP": "EDNS over TCP: each connection carries several queries in flight (pipelining)",
    }
    for mix, extra in t.get("mixes", {}).items():
        w(f"- *{mix}*: {notes.get(mix, '')} (`{extra or 'no options'}`)")
    w("")
    w("**Summary** (kube-gtm's QPS per core as a ratio of each peer's; p99 at full load):\n")
    w("| mix | kube-gtm QPS per core | vs Knot | vs gdnsd | p99 kube-gtm / Knot / gdnsd |")
    w("|---|---:|---:|---:|---|")
    for mix, rows in t["table"].items():
        k, kn, g = rows["kube-gtm"], rows["knot"], rows["gdnsd"]
        w(
            f"| {mix} | {fmt(k['qps_per_core'])} | {ratio(k['qps_per_core'], kn['qps_per_core'])} | "
            f"{ratio(k['qps_per_core'], g['qps_per_core'])} | {fmt(k['p99_ms'], 3)} / {fmt(kn['p99_ms'], 3)} / "
            f"{fmt(g['p99_ms'], 3)} ms |"
        )
    w("")
    for mix, rows in t["table"].items():
        w(f"**Mix: {mix}**\n")
        w("| server | QPS | p50 | p99 | p99.9 | server CPU | QPS per core | kube-gtm ratio (QPS / per core) | rcodes |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---|")
        k = rows["kube-gtm"]
        for name, x in rows.items():
            rc = ", ".join(f"{a} {b}" for a, b in sorted(x["rcodes"].items()))
            rat = "" if name == "kube-gtm" else f"{ratio(k['qps'], x['qps'])} / {ratio(k['qps_per_core'], x['qps_per_core'])}"
            w(
                f"| {name} | {fmt(x['qps'])} | {fmt(x.get('p50_ms'), 3)} ms | {fmt(x['p99_ms'], 3)} ms | "
                f"{fmt(x.get('p999_ms'), 3)} ms | {fmt(x['cpu_share'], 2)} | {fmt(x['qps_per_core'])} | {rat} | "
                f"{rc} (last run) |"
            )
        w("")
    steady = t.get("steady")
    if steady:
        names = list(next(iter(steady.values())))
        rounds = len(next(iter(next(iter(steady.values())).values()))["runs"])
        w(
            f"**At a steady {fmt(t['steady_qps'])} queries/s** (`-Q {t['steady_qps']}`, same clients, "
            f"{t['steady_seconds']} s a run): latency only. The servers take turns, mix by mix, in an order rotated each round, for "
            f"{rounds} rounds; each figure is the median of the runs' percentiles (every run is listed "
            "below the table).\n"
        )
        w("| mix | " + " | ".join(f"{n} p50 / p99 / p99.9" for n in names) + " |")
        w("|---|" + "---|" * len(names))
        for mix, rows in steady.items():
            cells = [
                f"{fmt(rows[n]['p50_ms'], 3)} / {fmt(rows[n]['p99_ms'], 3)} / {fmt(rows[n]['p999_ms'], 3)} ms"
                for n in names
            ]
            w(f"| {mix} | " + " | ".join(cells) + " |")
        w("")
        w("Runs at the steady rate, p50 / p99 / p99.9 in ms (load: the 1-minute load average when the run ended):\n")
        for mix, rows in steady.items():
            for name, x in rows.items():
                w(f"- {mix}, {name}: " + "; ".join(steady_run(r) for r in x["runs"]))
        w("")
    render_noise_floor(w, t)
    w("All runs, in order (load: the 1-minute load average when the run ended):\n")
    for mix, per in t["runs"].items():
        for name, rs in per.items():
            w(
                f"- {mix}, {name}: "
                + "; ".join(
                    f"{fmt(x['qps'])} qps @ {x['cpu_share']:.2f} CPU = {fmt(x['qps_per_core'])}/core, "
                    f"p99 {x['p99_ms']:.3f} ms, lost {x['lost']}, load {x.get('loadavg', 0):.2f}"
                    for x in rs
                )
            )
    w("")
    probing = t.get("probing")
    if probing:
        wake = ", ".join(f"{name} {n:.1f}" for name, n in sorted(probing["idle_wakeups_per_s"].items()))
        on, off = probing["probing"], probing["prober paused"]
        rounds = len(next(iter(on.values()))["runs"])
        w("**What probing costs the answer path.** ")
        w(
            f"The DNS pod's context switches per second while idle, by thread (prober running): {wake}. "
            f"Plain queries at a steady {fmt(t['steady_qps'])}/s with the operator probing every second "
            f"and paused (`SIGSTOP`), every server both ways, in turns ({rounds} rounds, medians):\n"
        )
        w("| server | probing: p50 / p99 / p99.9 | paused: p50 / p99 / p99.9 |")
        w("|---|---|---|")
        for name, x in on.items():
            y = off[name]
            w(
                f"| {name} | {fmt(x['p50_ms'], 3)} / {fmt(x['p99_ms'], 3)} / {fmt(x['p999_ms'], 3)} ms | "
                f"{fmt(y['p50_ms'], 3)} / {fmt(y['p99_ms'], 3)} / {fmt(y['p999_ms'], 3)} ms |"
            )
        w("")
        for state, per in probing.items():
            if state == "idle_wakeups_per_s":
                continue
            for name, x in per.items():
                w(f"- {name}, {state}: " + "; ".join(steady_run(r) for r in x["runs"]))
        w("")
        w(PROBING_PROSE)
    profiles = t.get("profiles")
    if profiles:
        w("### Where kube-gtm's CPU goes, per path\n")
        w(
            "`perf record -F 1999 -p <gtm-dnspod>` (samples without call graphs) over a run of each mix at "
            "full load; the share of the DNS pod's samples per binary, then its hottest symbols "
            "(`[k]` kernel).\n"
        )
        for mix, prof in profiles.items():
            binaries = ", ".join(f"{dso} {pct:.0f} %" for pct, dso in prof["binaries"][:4])
            top = "; ".join(
                f"{sym or '?'}{' [k]' if dso.startswith('[kernel') else ''} {pct:.1f} %"
                for pct, dso, sym in prof["symbols"][:8]
            )
            w(f"- *{mix}*: {binaries}. Top: {top}.")
        w("")


def render(r):
    s = r["sections"]
    m0, m1 = r["machine_before"], r.get("machine_after", r["machine_before"])
    v = r.get("versions", {})
    out = []
    w = out.append
    w("# Benchmarks\n")
    w(
        "Written by `make bench` (`bench/run.sh`, which installs what is missing, builds the release "
        "binaries and runs `bench/bench.py`). Everything runs on this one machine on 127.0.0.1, in one "
        "run, so that kube-gtm and its peers see the same conditions; the ratios matter more than the "
        "absolute figures.\n"
    )
    w(f"- Run: {r['started']} to {r.get('finished', '?')} (UTC)")
    w(
        f"- Machine: {m0['nproc']} cores, {m0['cpu']}, Linux {m0['kernel']}, {m0['memory_gib']} GiB; "
        f"load average {' '.join(m0['loadavg'])} before, {' '.join(m1['loadavg'])} after "
        "(the machine is shared: other builds may have run meanwhile)"
    )
    cores = r.get("cores", {})
    w(
        f"- Pinning (`taskset`): servers on core {cores.get('server')}, dnsperf and the operator on core "
        f"{cores.get('load_generator')}; every thread of a server is pinned again once it answers "
        "(`taskset -a -p`), because knotd moves its UDP workers to CPUs of its own choosing (worker i "
        "to CPU i mod the CPUs online), one of them beside dnsperf"
    )
    if v:
        w(f"- Versions: kube-gtm {v.get('kube-gtm', '?')}, {v.get('rustc', '?')}")
    t = s.get("throughput")
    if t:
        tv = t["versions"]
        w(f"- Peers: {tv['gdnsd']}; {tv['knot']}; {tv['dnsperf']}")
    w("")

    # Targets
    w("## Targets\n")
    w("| target | figure | |")
    w("|---|---|---|")
    if t:
        for mix, rows in t["table"].items():
            k = rows["kube-gtm"]
            for peer in ("knot", "gdnsd"):
                x = rows[peer]
                w(
                    f"| QPS per server core ≥ {peer} ({mix}) | {fmt(k['qps_per_core'])} vs {fmt(x['qps_per_core'])} "
                    f"(ratio {ratio(k['qps_per_core'], x['qps_per_core'])}) | {verdict(k['qps_per_core'] >= x['qps_per_core'])} |"
                )
        for label, k, kn in p99_comparisons(t, "kube-gtm"):
            w(f"| p99 ≤ Knot's ({label}) | {fmt(k, 3)} vs {fmt(kn, 3)} ms | {verdict(k <= kn)} |")
    else:
        w("| DNS throughput | | not measured |")
    p = s.get("propagation")
    if p:
        w(
            f"| manifest change to answer p99 < 500 ms | p50 {fmt(p['manifest_ms']['p50'], 1)} ms, "
            f"p99 {fmt(p['manifest_ms']['p99'], 1)} ms | {verdict(p['manifest_ms']['p99'] < 500)} |"
        )
        w(
            f"| health verdict to answer < 100 ms | p50 {fmt(p['health_ms']['p50'], 1)} ms, "
            f"p99 {fmt(p['health_ms']['p99'], 1)} ms, max {fmt(p['health_ms']['max'], 1)} ms | "
            f"{verdict(p['health_ms']['p99'] < 100)} |"
        )
    f = s.get("failover")
    if f and "kube-gtm" in f:
        k, g = f["kube-gtm"], f["gdnsd"]
        w(
            f"| failover median below gdnsd's (1 s checks) | {fmt(k['out_median'], 2)} s vs {fmt(g['out_median'], 2)} s | "
            f"{verdict(k['out_median'] < g['out_median'])} |"
        )
        fast, pdns = f.get("kube-gtm-100ms"), f.get("powerdns")
        if fast and pdns:
            best = min(x["out_median"] for x in (g, pdns))
            w(
                f"| failover median below every peer's (100 ms checks) | {fmt(fast['out_median'], 2)} s vs "
                f"PowerDNS {fmt(pdns['out_median'], 2)} s, gdnsd {fmt(g['out_median'], 2)} s | "
                f"{verdict(fast['out_median'] < best)} |"
            )
    else:
        w("| failover median below gdnsd's | | not measured |")
    sc = s.get("scale")
    if sc:
        big = sc["sizes"][-1]
        for x in sc["sizes"][:-1]:
            w(
                f"| {x['label']}: compile, RSS (no target) | {fmt(statistics.median(x['compile_s']), 3)} s, "
                f"{fmt(x['rss_kb'] / 1024)} MB | |"
            )
        c = statistics.median(big["compile_s"])
        w(f"| {big['label']}: compile < 2 s | {fmt(c, 3)} s | {verdict(c < 2.0)} |")
        w(
            f"| {big['label']}: DNS pod RSS < 200 MB, peak included | {fmt(big['rss_kb'] / 1024)} MB serving, "
            f"{fmt(big['rss_peak_kb'] / 1024)} MB peak across reloads | {verdict(big['rss_peak_kb'] / 1024 < 200)} |"
        )
        hv = big.get("health")
        if hv:
            w(
                f"| {big['label']}: verdict to answer p99 < 10 ms | p50 {fmt(hv['p50'], 1)} ms, "
                f"p99 {fmt(hv['p99'], 1)} ms | {verdict(hv['p99'] < 10)} |"
            )
        rl = big["reload"]
        w(
            f"| reload under full load loses zero queries | {rl['lost']} lost of {fmt(rl['sent'])} "
            f"({rl['reloads_applied']:.0f} reloads) | {verdict(rl['lost'] == 0 and rl['reloads_applied'] > 0)} |"
        )
    pr = s.get("prober")
    if pr:
        w(f"| prober CPU, 10 000 TCP tasks at 1 s (no target) | {fmt(pr['cpu_percent'], 1)} % of one core | |")
        fast = pr.get("runs", {}).get("100ms")
        if fast:
            w(
                f"| prober CPU per probe, 1 s vs 100 ms intervals (no target) | "
                f"{fmt(pr['per_probe_us'], 1)} µs vs {fmt(fast['per_probe_us'], 1)} µs | |"
            )
    w("")

    if t:
        render_throughput(w, t)

    if p:
        w("## 2. Propagation\n")
        mm, hm = p["manifest_ms"], p["health_ms"]
        w(
            f"Manifest change to answer: `gtm-operator local` watches a manifest directory and writes "
            f"`config.json`; `gtm-dnspod --config-dir` follows it. The manifest of a one-address pool is "
            f"replaced (rename) with a new address {p['changes']} times, 50 to 250 ms apart, and a UDP "
            f"client polls the name every millisecond until the new address is answered.\n"
        )
        w(
            "Health verdict to answer: `health.json` is replaced (rename) with the first address of a "
            "`Sequential` pool alternately `Down` and `Up`, as the operator writes it on a verdict change, "
            "and the name is polled until the answer moves. This is the DNS pod's part of the path; the "
            "prober's part is the check interval (see failover).\n"
        )
        w("| path | n | min | p50 | p99 | max |")
        w("|---|---:|---:|---:|---:|---:|")
        for label, x in (("manifest change to answer", mm), ("health verdict to answer", hm)):
            w(f"| {label} | {x['n']} | {fmt(x['min'], 1)} ms | {fmt(x['p50'], 1)} ms | {fmt(x['p99'], 1)} ms | {fmt(x['max'], 1)} ms |")
        w("")

    w("## 3. Failover\n")
    if f and "kube-gtm" in f:
        w(
            "A backend (TCP listener) behind the first address of a two-address failover set is killed "
            "(SIGKILL) and restarted; a UDP client polls every 5 ms and times how long until the dead "
            "address leaves the answer and until it returns, "
            f"{f['trials']} trials each, 0.5 to 1.5 s apart so that kills fall at random points of the "
            f"check schedule. kube-gtm: {f['kube-gtm_settings']}"
            + (f"; kube-gtm-100ms: {f['kube-gtm-100ms_settings']}" if "kube-gtm-100ms" in f else "")
            + " (operator local mode with its prober, "
            f"DNS pod following `health.json`). gdnsd: `simplefo`, {f['gdnsd_settings']} (its fastest: "
            "`checkconf` refuses an interval below 2 s, and the timeout must be at least 1 s and below "
            "the interval)."
            + (f" PowerDNS: {f['powerdns_settings']}." if "powerdns" in f else "")
            + "\n"
        )
        w("| server | out: median | out: max | back: median | back: max | out, each trial | back, each trial |")
        w("|---|---:|---:|---:|---:|---|---|")
        for name in ("kube-gtm-100ms", "kube-gtm", "powerdns", "gdnsd"):
            if name not in f:
                continue
            x = f[name]
            w(
                f"| {name} | {x['out_median']:.2f} s | {x['out_max']:.2f} s | {x['back_median']:.2f} s | "
                f"{x['back_max']:.2f} s | {', '.join(f'{y:.2f}' for y in x['out_s'])} | "
                f"{', '.join(f'{y:.2f}' for y in x['back_s'])} |"
            )
        w("")
    elif f:
        w(f.get("note", "Not measured.") + "\n")
    else:
        w("Not measured in this run.\n")

    if sc:
        w("## 4. Scale\n")
        w(
            "Generated manifests: N access domains, each with one `Weighted` pool of 10 loopback "
            "addresses and a TCP health check (so N × 10 addresses and probe tasks). "
            "`bench/scale` (`gtm-bench-scale`) times the operator's manifest load (YAML parse and schema "
            "validation), `gtm_operator::compile::compile`, and the DNS pod's parse and index build "
            "(`Compiled::build`, what a reload costs), median of 3 each; it writes `config.json` and "
            "`health.json` (every task `Up`). `gtm-dnspod` then serves them, pinned to one core: RSS after "
            "start-up (`VmRSS`), and the peak (`VmHWM`) after a reload test: dnsperf at full load over "
            "1 000 of the names while `config.json` is republished with a new generation every 2 s, "
            "then verdicts: `health.json` (every task listed) replaced with the first address of `d0` "
            "(a `Sequential` pool) alternately `Down` and `Up`, timed from the rename to the first "
            "moved answer (polled every millisecond), as in Propagation but at this size; 200 verdicts at "
            "full size, so the p99 (nearest rank) is the 198th sample, not the slowest.\n"
        )
        w("| size | load + validate | compile | published config.json / health.json | DNS pod parse + build | DNS pod ready | RSS serving | RSS peak | reload under load | verdict to answer (p50 / p99, n) |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
        for x in sc["sizes"]:
            rl = x["reload"]
            w(
                f"| {x['label']} | {statistics.median(x['load_s']):.3f} s | {statistics.median(x['compile_s']):.3f} s | "
                f"{x['config_bytes'] / 1e6:.1f} MB / {x['health_bytes'] / 1e6:.1f} MB | "
                f"{statistics.median(x['dnspod_parse_s']):.3f} s + {statistics.median(x['dnspod_build_s']):.3f} s | "
                f"{x['dnspod_ready_s']:.2f} s | {x['rss_kb'] / 1024:.0f} MB | {x['rss_peak_kb'] / 1024:.0f} MB | "
                f"{rl['reloads_applied']:.0f} reloads, {fmt(rl['sent'])} sent, {rl['lost']} lost, "
                f"{fmt(rl['qps'])} QPS, rcodes {', '.join(f'{a} {b}' for a, b in rl['rcodes'].items())} | "
                + (
                    f"{x['health']['p50']:.1f} ms / {x['health']['p99']:.1f} ms, {x['health']['n']} |"
                    if x.get("health")
                    else "not measured |"
                )
            )
        w("")

    w("## 5. Prober cost\n")
    if pr:
        w(
            "`cargo run --release -p gtm-prober --example load`: 10 000 TCP tasks at a 1 s interval, "
            "then 1 000 at 100 ms (`intervalMillis`; as many probes a second), "
            "against local listeners (in a child process, not counted), CPU of the prober's process:\n"
        )
        for x in pr.get("runs", {"1s": pr}).values():
            w("```\n" + x["output"] + "\n```\n")
    else:
        w("Not measured in this run.\n")

    lo = s.get("locations")
    if lo:
        w("## Probe locations\n")
        w(
            "A location's verdict to the answer, local mode: `gtm-operator local` reads the locations' "
            "report files (polled every 50 ms, `LOCATION_POLL` in operator/src/local/mod.rs), votes, "
            "and writes `health.json`, which `gtm-dnspod --config-dir` follows. Three locations vote on "
            "the primary's task at `failureRatePercent: 50`: `a` sees it down, `c` up, and `b` flips, "
            f"{lo['changes']} times, 50 to 250 ms apart; the bench plays the three `gtm-prober` "
            "processes, writing their reports as they do, so the time runs from the rename of "
            "`b.verdicts.json` to the first moved answer (the prober's own part is its check interval "
            "and thresholds, as in Failover).\n"
        )
        w("| path | n | min | p50 | p99 | max |")
        w("|---|---:|---:|---:|---:|---:|")
        for label, key in (("location verdict to answer", "verdict_ms"), ("second location down: to the standby", "down_ms"), ("back to one down: to the primary", "up_ms")):
            x = lo[key]
            w(f"| {label} | {x['n']} | {fmt(x['min'], 1)} ms | {fmt(x['p50'], 1)} ms | {fmt(x['p99'], 1)} ms | {fmt(x['max'], 1)} ms |")
        w("")

    if s.get("cluster"):
        import cluster  # noqa: PLC0415 - beside this file

        out.extend(cluster.report(s["cluster"]))

    if s.get("flood"):
        import flood  # noqa: PLC0415 - beside this file

        out.extend(flood.report(s["flood"]))

    if s.get("dnssec"):
        import dnssec  # noqa: PLC0415 - beside this file

        out.extend(dnssec.report(s["dnssec"]))

    findings = os.path.join(HERE, "findings.md")
    if os.path.exists(findings):
        with open(findings) as fh:
            w(fh.read().rstrip() + "\n")

    w("## Command lines\n")
    w("Every command the run started, in order (temporary directories vary):\n")
    w("```")
    section = None
    for sec, line in r.get("commands", []):
        if sec != section:
            w(f"# {sec}")
            section = sec
        w(line)
    w("```")
    return "\n".join(out) + "\n"
