"""The greenhouse example: a local graph that explains itself. Run: python examples/greenhouse.py

The code lives in the installed package (manyfold.examples.greenhouse) so that `manyfold demo`
runs it on any machine; this script is the entry point for people reading the repository.
"""

from manyfold.examples.greenhouse import build, main


def build_graph():
    """The greenhouse graph with its sensor board partition, for `manyfold compile examples/greenhouse.py`."""
    return build(device=True).graph


if __name__ == "__main__":
    main()
