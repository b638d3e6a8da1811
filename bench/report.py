#!/usr/bin/env python3
"""Reads the wrk outputs bench/load.sh saved (DIR/r<round>-<case>.wrk, with the peak RSS of
the proxy under test in DIR/r<round>-<case>.rss) and prints the comparison table: median
req/s, p50 and p99 over the rounds, ratios against the nginx floor, peak RSS.

usage: report.py DIR
"""

import glob
import os
import re
import statistics
import sys

CASES = [
    ("a", "upstream direct (nginx return 200)"),
    ("b", "nginx reverse proxy, upstream keep-alive"),
    ("h", "hyper floor: bare hyper proxy (hyper_floor.rs)"),
    ("c", "stagedoor, public route"),
    ("d", "stagedoor, ES256/JWKS + 1k routes + 1k roles"),
    ("e1", "stagedoor authorize, 1-item batch"),
    ("e50", "stagedoor authorize, 50-item batch"),
]
UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse(path):
    text = open(path).read()
    out = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    out["rps"] = float(m.group(1)) if m else None
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
        out["p" + pct] = float(m.group(1)) * UNIT_MS[m.group(2)] if m else None
    m = re.search(r"(\d+) requests in", text)
    out["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["sockerr"] = sum(map(int, m.groups())) if m else 0
    return out


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, spec, none="-"):
    return none if v is None else format(v, spec)


def main():
    d = sys.argv[1]
    rows = {}
    for key, label in CASES:
        runs = sorted(glob.glob(os.path.join(d, f"r*-{key}.wrk")))
        if not runs:
            continue
        parsed = [parse(p) for p in runs]
        rss = []
        for p in runs:
            try:
                rss.append(int(open(p[:-4] + ".rss").read().split()[0]))
            except (OSError, ValueError, IndexError):
                pass
        cpu = []
        for p, run in zip(runs, parsed):
            try:
                ticks, hz = open(p[:-4] + ".cpu").read().split()
                if run["requests"]:
                    cpu.append(int(ticks) / int(hz) * 1e6 / run["requests"])
            except (OSError, ValueError):
                pass
        rows[key] = {
            "cpu": med(cpu),
            "label": label,
            "rounds": len(parsed),
            "rps": med([p["rps"] for p in parsed]),
            "rps_all": [p["rps"] for p in parsed],
            "p50": med([p["p50"] for p in parsed]),
            "p99": med([p["p99"] for p in parsed]),
            "bad": sum(p["non2xx"] + p["sockerr"] for p in parsed),
            "requests": sum(p["requests"] for p in parsed),
            "rss": max(rss) if rss else None,
        }
    if not rows:
        sys.exit("no wrk results in " + d)
    print(
        f"{'case':<4} {'what':<46} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU/req':>8} {'peak RSS':>10} {'non-2xx/err':>11}  req/s per round"
    )
    for key, _ in CASES:
        r = rows.get(key)
        if not r:
            continue
        rss = f"{r['rss'] / 1024:.1f} MiB" if r["rss"] else "-"
        cpu = f"{r['cpu']:.1f} us" if r["cpu"] else "-"
        per_round = " ".join(fmt(x, ".0f") for x in r["rps_all"])
        print(
            f"({key}){'':<{3 - len(key)}} {r['label']:<46} {fmt(r['rps'], '9.0f'):>9} {fmt(r['p50'], '8.3f'):>8} "
            f"{fmt(r['p99'], '8.3f'):>8} {cpu:>8} {rss:>10} {r['bad']:>11}  {per_round}"
        )
    print()

    def ratio(x, y):
        if x in rows and y in rows and rows[x]["rps"] and rows[y]["rps"]:
            return f"{rows[x]['rps'] / rows[y]['rps']:.2f}"
        return "-"

    print(
        f"throughput ratios (median req/s):  (c)/(b) = {ratio('c', 'b')}   (d)/(b) = {ratio('d', 'b')}   "
        f"(d)/(a) = {ratio('d', 'a')}   (c)/(a) = {ratio('c', 'a')}   (b)/(a) = {ratio('b', 'a')}"
    )
    if "h" in rows:
        print(
            f"against the hyper floor (h):       (c)/(h) = {ratio('c', 'h')}   (d)/(h) = {ratio('d', 'h')}   "
            f"(h)/(b) = {ratio('h', 'b')}"
        )
    if all(k in rows and rows[k]["cpu"] for k in ("b", "c")):
        extra = "".join(
            f"   ({k}) {rows[k]['cpu']:.1f}" for k in ("h", "d") if k in rows and rows[k]["cpu"]
        )
        print(f"proxy CPU per request (us):  (b) nginx {rows['b']['cpu']:.1f}   (c) {rows['c']['cpu']:.1f}{extra}")
    if "d" in rows and "b" in rows and rows["d"]["p99"] is not None and rows["b"]["p99"] is not None:
        print(f"p99 difference (d) - (b) = {rows['d']['p99'] - rows['b']['p99']:+.3f} ms")
    if "e1" in rows and "e50" in rows and rows["e1"]["rps"] and rows["e50"]["rps"]:
        print(
            f"authorize: {rows['e50']['rps'] * 50:.0f} decisions/s in 50-item batches vs "
            f"{rows['e1']['rps']:.0f} in 1-item batches"
        )
    bad = [k for k, r in rows.items() if r["bad"]]
    if bad:
        print(
            "WARNING: non-2xx answers or socket errors in case(s) "
            + ", ".join(f"({k})" for k in bad)
            + ": their numbers do not measure the intended path"
        )


if __name__ == "__main__":
    main()
