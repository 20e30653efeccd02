"""The greenhouse's camera jobs through a DurableQueue and a MaterializedView, kept in a store
directory (a restart half-way replays the unacknowledged jobs).

    python examples/camera_jobs.py [--store DIR]

The code lives in the installed package (manyfold.examples.camera_jobs); docs/durability.md
explains the queue.
"""

from manyfold.examples.camera_jobs import main

if __name__ == "__main__":
    main()
