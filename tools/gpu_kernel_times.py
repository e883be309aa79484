#!/usr/bin/env python3
"""Per-kernel GPU time from an Nsight Compute CSV (ncu --csv --print-units base --metrics
gpu__time_duration.sum), summed by kernel name: where a decode step's GPU time goes.

  tools/gpu_kernel_times.py ncu.csv [--per N]   # N: divide totals by N (tokens x layers, say)
"""
import argparse
import csv
import re
import sys
from collections import defaultdict


def short_name(name: str) -> str:
    # "void hexe::gpu::(anonymous namespace)::gemv_q<(hexe::DType)12, 1>(const void *, ...)" ->
    # "gemv_q<(hexe::DType)12, 1>": the namespaces and the parameter list dropped, template
    # arguments kept (they tell the weight types apart).
    name = name.replace("(anonymous namespace)::", "")
    if name.startswith("void "):
        name = name[5:]
    depth = 0
    for i, c in enumerate(name):
        if c == "<":
            depth += 1
        elif c == ">":
            depth -= 1
        elif c == "(" and depth == 0:
            name = name[:i]
            break
    head, sep, tmpl = name.partition("<")
    return (head.rsplit("::", 1)[-1] + sep + tmpl)[:90]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--per", type=float, default=1.0, help="divide totals by this (e.g. tokens x layers)")
    a = ap.parse_args()
    total = defaultdict(float)
    count = defaultdict(int)
    with open(a.csv, newline="") as f:
        # ncu prints its own log lines before the CSV header.
        lines = [l for l in f if l.startswith('"')]
    for row in csv.DictReader(lines):
        if row.get("Metric Name") != "gpu__time_duration.sum":
            continue
        unit = row.get("Metric Unit", "nsecond")
        v = float(row["Metric Value"].replace(",", ""))
        us = v * {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3}.get(unit, 1e-3)
        n = short_name(row["Kernel Name"])
        total[n] += us
        count[n] += 1
    if not total:
        print("no gpu__time_duration rows in", a.csv)
        return 1
    grand = sum(total.values())
    print(f"{'kernel':60s} {'calls':>7s} {'mean us':>9s} {'total/per':>10s} {'share':>6s}")
    for n in sorted(total, key=total.get, reverse=True):
        print(f"{n[:60]:60s} {count[n]:7d} {total[n] / count[n]:9.2f} {total[n] / a.per:10.2f} {total[n] / grand:6.1%}")
    print(f"{'all':60s} {sum(count.values()):7d} {'':9s} {grand / a.per:10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
