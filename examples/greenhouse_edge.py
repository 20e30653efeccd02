"""The greenhouse on the edge: the same greenhouse split across runtime nodes and a board.

    manyfold demo edge                                   # plan, start, report, stop
    manyfold compile examples/greenhouse_edge.py -o greenhouse-edge.json
    manyfold plan greenhouse-edge.json --nodes nodes.toml -o plan.toml && manyfold up plan.toml

The code lives in the installed package (manyfold.examples.greenhouse_edge); docs/edge.md
explains the nodes, links and the plan.
"""

from manyfold.examples.greenhouse_edge import build


def build_graph():
    """The edge greenhouse's graph, for `manyfold compile examples/greenhouse_edge.py`."""
    return build()


if __name__ == "__main__":
    import sys

    from manyfold.cli import main

    sys.exit(main(["demo", "edge", *sys.argv[1:]]))
