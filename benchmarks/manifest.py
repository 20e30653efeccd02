"""Manifest compile and validate time for generated graphs of 1k, 10k and 100k routes.

Each graph has N routes and 2N edges: N/2 source routes and N/2 merge nodes, each merging four
sources into its own output route. Prints one JSON line per size with seconds, medians of
--rounds rounds: ``build_s`` (declaring the graph; not part of the target), ``compile_s``
(the typed manifest, its deterministic CBOR and its SHA-256 id), ``validate_s`` (all eight
rules), ``total_s`` (compile + validate, the target), and ``json_s`` (the canonical JSON
rendering for people, reported apart).

Peer (``--peer``; same run, same machine): manyfold 0.1.42 from PyPI in its own virtualenv
(created under ``benchmarks/.peer-venv`` on first use), one subprocess per size. 0.1.42 has no
merge node, so its graph is the nearest equivalent its API allows: N routes registered with
``Graph.register_port`` (N/2 sources, N/2 outputs), 2N edges from ``Graph.connect(source=,
sink=)`` (each output fed by the same four sources as ours), and N/2 ``register_diagram_node``
entries (four inputs, one output each). One JSON line per size, ``{"routes", "peer", "edges",
"nodes", "build_s", "manifest_s", "json_s"}``: ``build_s`` is declaring that graph (once),
``manifest_s`` is ``Graph.manifest()`` (the typed GraphManifest; no CBOR, id or validation) and
``json_s`` is ``Graph.manifest_json()``, which rebuilds the manifest itself. A size whose
subprocess runs past ``--peer-timeout`` seconds gives ``{"skipped": "over 120 s"}`` instead.
(0.1.42's native ``Graph.connect`` slows as the graph grows, so its build is roughly quadratic:
about 30 s at 10k routes; 100k does not finish within the default 120 s.)
Then one ``{"comparison", "routes", "ratio"}`` line per size measured on both sides: the peer's
``manifest_s`` over our ``compile_s`` (above 1: ours is faster).

Target (issue 5): 10k routes compiled and validated in under 1 second, cost growing linearly.
Run: python benchmarks/manifest.py [--peer]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from manyfold import manifest
from manyfold.graph import FLOAT, Graph, Layer, Plane, Route

ROOT = Path(__file__).resolve().parent.parent
PEER_VENV = ROOT / "benchmarks" / ".peer-venv"
PEER_VERSION = "0.1.42"
PEER_NAME = f"manyfold {PEER_VERSION}"

PEER_SCRIPT = textwrap.dedent(
    """
    import json, statistics, sys, time
    import manyfold as mf
    routes, rounds = int(sys.argv[1]), int(sys.argv[2])
    schema = mf.Schema.float(name="value")
    def port(g, stream):
        r = mf.route(plane=mf.Plane.Read, layer=mf.Layer.Raw, owner="gen", family="bench", stream=stream, schema=schema)
        return g.register_port(r)
    def build():
        g = mf.Graph()
        sources = [port(g, f"s{i}") for i in range(routes // 2)]
        n = len(sources)
        for i in range(routes - n):
            out, inputs = port(g, f"m{i}"), [sources[(i + k) % n] for k in range(4)]
            for s in inputs:
                g.connect(source=s, sink=out)
            g.register_diagram_node(f"m{i}", input_routes=inputs, output_routes=[out])
        return g
    start = time.perf_counter()
    g = build()
    build_s = time.perf_counter() - start
    manifest_s, json_s = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        m = g.manifest()
        manifest_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        g.manifest_json()
        json_s.append(time.perf_counter() - start)
    print(json.dumps({"routes": len(m.routes), "edges": len(m.edges), "nodes": len(m.diagram_nodes), "build_s": build_s,
                      "manifest_s": statistics.median(manifest_s), "json_s": statistics.median(json_s)}))
    """
)


def emit(line: dict[str, Any]) -> None:
    print(json.dumps(line), flush=True)


def build(routes: int) -> Graph:
    g = Graph()
    sources = [g.route(Route(Plane.READ, Layer.RAW, "gen", "bench", f"s{i}"), FLOAT) for i in range(routes // 2)]
    n = len(sources)
    for i in range(routes - n):
        g.merge([sources[(i + k) % n] for k in range(4)], name=f"m{i}")
    return g


def measure(size: int, rounds: int) -> tuple[dict[str, Any], float]:
    """Our line for one size (build once, medians over the rounds) and the unrounded compile time."""
    start = time.perf_counter()
    g = build(size)
    build_s = time.perf_counter() - start
    compile_s, validate_s, json_s = [], [], []
    for _ in range(rounds):
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
    return {
        "routes": len(m.routes), "edges": len(m.edges), "nodes": len(m.nodes), "build_s": round(build_s, 3),
        "compile_s": round(c, 3), "validate_s": round(v, 3), "total_s": round(c + v, 3), "json_s": round(j, 3),
    }, c


def peer_python() -> Path:
    """The peer virtualenv's python, creating the virtualenv with manyfold 0.1.42 on first use."""
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {PEER_VENV} with manyfold=={PEER_VERSION} (once)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"manyfold=={PEER_VERSION}"], check=True)
    return python


def peer(python: Path, size: int, rounds: int, timeout_s: float) -> tuple[dict[str, Any], float | None]:
    """The peer's line for one size and its unrounded manifest time, or a "skipped" line and None past timeout_s."""
    head: dict[str, Any] = {"routes": size, "peer": PEER_NAME}
    cmd = [str(python), "-c", PEER_SCRIPT, str(size), str(rounds)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=timeout_s).stdout
    except subprocess.TimeoutExpired:
        return {**head, "skipped": f"over {timeout_s:g} s"}, None
    result = json.loads(out.strip().splitlines()[-1])
    return {**head, **{k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}}, result["manifest_s"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--peer", action="store_true", help=f"also run {PEER_NAME} from PyPI in its own virtualenv")
    parser.add_argument("--peer-timeout", type=float, default=120.0, help="seconds per peer size before it is skipped")
    args = parser.parse_args()
    ours: dict[int, float] = {}
    for size in (int(s) for s in args.sizes.split(",")):
        line, ours[size] = measure(size, args.rounds)
        emit(line)
    if not args.peer:
        return 0
    python = peer_python()
    for size, compile_s in ours.items():
        line, peer_s = peer(python, size, args.rounds, args.peer_timeout)
        emit(line)
        if peer_s is not None:
            emit({"comparison": "peer manifest_s / our compile_s", "routes": size, "ratio": round(peer_s / compile_s, 1)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
