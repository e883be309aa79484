#!/usr/bin/env python3
"""Compares two hexe builds on one `hexe bench` command, alternating them run by run.

    tools/ab_bench.py --a /tmp/hexe_old --b build/hexe --rounds 10 -- \
        bench moe-layer --shape qwen3-30b-a3b --quant q4_k --tokens 1 -r 5
    tools/ab_bench.py --a /tmp/hexe_old --b build/hexe -- bench -m FILE -p 0 -n 32 -r 3

Why: on shared and virtual machines the DRAM read bandwidth can change from minute to minute (a
2-vCPU build VM moved between about 33 and 60 GB/s within seconds). Runs of one build and then
the other compare two machine states, not two builds. This runs A and B alternately (B first
every other round), reads each run's DRAM probe and ratio from the bench's own output, groups the
runs by bandwidth level and prints the medians of each build within each level.

Levels: a run's DRAM figure is the median of the read probes the bench printed for it. With
--split GBPS runs are put below or above that figure; without it, at the largest relative gap
between the sorted run figures when that gap is over 25% (else all runs are one level). A
moe-layer run whose probes straddle the split is reported as "mixed".
Only the Python standard library is needed.
"""
import argparse
import re
import statistics
import subprocess
import sys

# moe-layer prints one probe per timed run, end to end the median of its probes: one line each.
DRAM = re.compile(r"^dram read ([\d. ]+) GB/s", re.M)
RATIO = re.compile(r"^ratio ([\d.]+)\s*$", re.M)                     # moe-layer's last line
ROW = re.compile(r"^\|(.+)\|\s*$", re.M)                             # end-to-end table rows


def parse(text):
    """One run's figures: {'dram': [GB/s...], 'rows': [(test, t/s, ratio)], 'ratio': x or None}."""
    out = {"dram": [], "rows": [], "ratio": None}
    m = DRAM.search(text)
    if m:
        out["dram"] = [float(v) for v in m.group(1).split()]
    r = RATIO.findall(text)
    if r:
        out["ratio"] = float(r[-1])
    for row in ROW.findall(text):
        cells = [c.strip() for c in row.split("|")]
        # model | size | params | threads | test | t/s +- sd | bytes/token | ratio
        if len(cells) >= 8 and re.match(r"^(pp|tg)\d+", cells[4]):
            tps = float(cells[5].split("+-")[0])
            ratio = float(cells[7]) if re.match(r"^[\d.]+$", cells[7]) else None
            out["rows"].append((cells[4], tps, ratio))
    return out


def split_point(values):
    """The DRAM figure between the two levels, or None when the runs look like one level."""
    v = sorted(values)
    best, at = 1.0, None
    for lo, hi in zip(v, v[1:]):
        if lo > 0 and hi / lo > best:
            best, at = hi / lo, (lo + hi) / 2
    return at if best > 1.25 else None


def level(dram, split):
    if split is None or not dram:
        return "all"
    below = [d < split for d in dram]
    return "low" if all(below) else "high" if not any(below) else "mixed"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--a", required=True, help="first hexe binary (e.g. the previous build)")
    ap.add_argument("--b", required=True, help="second hexe binary")
    ap.add_argument("--rounds", type=int, default=6, help="runs of each binary (default 6)")
    ap.add_argument("--split", type=float, default=None, help="GB/s between the levels (default: found)")
    ap.add_argument("cmd", nargs=argparse.REMAINDER, help="-- then the arguments after the binary")
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    if not cmd:
        ap.error("give the bench command after --, e.g. -- bench moe-layer --shape qwen3-30b-a3b")
    if a.rounds < 1:
        ap.error("--rounds must be at least 1")

    runs = []  # (name, parsed)
    for i in range(a.rounds):
        for name in (("A", "B") if i % 2 == 0 else ("B", "A")):
            binary = a.a if name == "A" else a.b
            try:
                p = subprocess.run([binary] + cmd, capture_output=True, text=True)
            except OSError as e:
                sys.exit(f"cannot run {binary}: {e.strerror}")
            if p.returncode != 0:
                sys.exit(f"{binary} {' '.join(cmd)} exited with {p.returncode}:\n{p.stderr[-2000:]}")
            r = parse(p.stdout + p.stderr)
            if not r["dram"] or (r["ratio"] is None and not r["rows"]):
                sys.exit(f"{binary}: no 'dram read' or ratio in its output; is this a `bench` command?")
            runs.append((name, r))
            figs = ", ".join(f"{t} {tps:.2f} t/s" + (f" ratio {q:.3f}" if q is not None else "")
                             for t, tps, q in r["rows"]) or f"ratio {r['ratio']:.3f}"
            print(f"round {i + 1} {name}: dram {statistics.median(r['dram']):.1f} GB/s, {figs}", flush=True)

    split = a.split if a.split is not None else split_point([statistics.median(r["dram"]) for _, r in runs])
    print(f"\nlevels split at {split:.1f} GB/s" if split else "\none level")
    groups = {}
    for name, r in runs:
        lv = level(r["dram"], split)
        entries = [(t, tps, q) for t, tps, q in r["rows"]] or [("ratio", None, r["ratio"])]
        for test, tps, q in entries:
            groups.setdefault((lv, test, name), []).append((tps, q, statistics.median(r["dram"])))
    for (lv, test, name) in sorted(groups):
        g = groups[(lv, test, name)]
        qs = [q for _, q, _ in g if q is not None]
        tps = [t for t, _, _ in g if t is not None]
        line = f"{lv:5} {test:6} {name}: n {len(g):2}  dram {statistics.median(d for _, _, d in g):5.1f}"
        if tps:
            line += f"  t/s {statistics.median(tps):8.2f}"
        if qs:
            line += f"  ratio {statistics.median(qs):.3f} [{min(qs):.3f} .. {max(qs):.3f}]"
        print(line)


if __name__ == "__main__":
    main()
