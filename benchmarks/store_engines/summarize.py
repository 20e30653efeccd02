#!/usr/bin/env python3
"""Median-of-runs table from `store-bench bench` JSON lines. Usage: summarize.py bench.jsonl"""
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1])]
eng = ["sqlite-full", "sqlite-normal", "redb"]
print("| engine | batch | appends/s | p99 commit µs | ack-mixed appends/s | ack-mixed p99 commit µs | runs |")
print("|---|---:|---:|---:|---:|---:|---:|")
for b in (1, 64, 1024):
    for e in eng:
        a = [r for r in rows if r["engine"] == e and r["batch"] == b and not r["ack"]]
        k = [r for r in rows if r["engine"] == e and r["batch"] == b and r["ack"]]
        m = lambda xs, f: st.median(x[f] for x in xs)
        print(f"| {e} | {b} | {m(a,'appends_per_s'):,.0f} | {m(a,'p99_commit_us'):,.0f} | {m(k,'appends_per_s'):,.0f} | {m(k,'p99_commit_us'):,.0f} | {len(a)} |")
loads = [float(r["load1"]) for r in rows]
print(f"\nload1 during run: min {min(loads)}, max {max(loads)}")
