"""Manifest compile and validate time for generated graphs of 1k, 10k and 100k routes.

Each graph has N routes and 2N edges: N/2 source routes and N/2 merge nodes, each merging four
sources into its own output route. Prints one JSON line per size with seconds, medians of
--rounds rounds: ``build_s`` (declaring the graph; not part of the target), ``compile_s``
(the typed manifest, its deterministic CBOR and its SHA-256 id), ``validate_s`` (all eight
rules), ``total_s`` (compile + validate, the target), and ``json_s`` (the canonical JSON
rendering for people, reported apart).

Target (issue 5): 10k routes compiled and validated in under 1 second, cost growing linearly.
Run: python benchmarks/manifest.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from manyfold import manifest
from manyfold.graph import FLOAT, Graph, Layer, Plane, Route


def build(routes: int) -> Graph:
    g = Graph()
    sources = [g.route(Route(Plane.READ, Layer.RAW, "gen", "bench", f"s{i}"), FLOAT) for i in range(routes // 2)]
    n = len(sources)
    for i in range(routes - n):
        g.merge([sources[(i + k) % n] for k in range(4)], name=f"m{i}")
    return g


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        start = time.perf_counter()
        g = build(size)
        build_s = time.perf_counter() - start
        compile_s, validate_s, json_s = [], [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            m = manifest.compile(g)
            _ = m.id  # deterministic CBOR + SHA-256
            compile_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            violations = manifest.validate(m)
            validate_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            m.to_json()
            json_s.append(time.perf_counter() - start)
            assert violations == []
        assert len(m.routes) == size and len(m.edges) == 4 * (size - size // 2)
        c, v, j = (statistics.median(x) for x in (compile_s, validate_s, json_s))
        print(json.dumps({
            "routes": len(m.routes), "edges": len(m.edges), "nodes": len(m.nodes), "build_s": round(build_s, 3),
            "compile_s": round(c, 3), "validate_s": round(v, 3), "total_s": round(c + v, 3), "json_s": round(j, 3),
        }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
