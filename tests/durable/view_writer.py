"""A writer process for tests/durable: publishes readings 1.. into the view graph in STORE_DIR
(argv[1]), printing each index after its publish returned (the view committed it), until
killed or argv[2] readings are written."""

from __future__ import annotations

import sys
from pathlib import Path

from viewkit import SOURCE, reading, view_graph


def main() -> None:
    store_dir, count = Path(sys.argv[1]), int(sys.argv[2])
    g = view_graph(store_dir)
    producer = g.producer("probe")
    start = g.view("latest").last_seq + 1
    for i in range(start, start + count):
        g.publish(SOURCE, reading(i), producer=producer)
        print(i, flush=True)


if __name__ == "__main__":
    main()
