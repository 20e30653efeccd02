"""A producer and consumer process for tests/durable: holds the image_jobs queue in STORE_DIR
(argv[1]); appends jobs from argv[2] on, acking what it is delivered except ids divisible by 5 (never) and those the
seeded choice (argv[3]) leaves for later. Prints, each after it is durable:
`A n` (job n's append committed), `D id attempt n dup` (delivered), `P id` (about to ack),
`K id` (ack committed).
With argv[4] == "pause": appends argv[5] jobs, acks ids up to argv[6], prints `ready`, then
waits to be killed."""

from __future__ import annotations

import random
import sys
from pathlib import Path

from queuekit import ACKS, JOBS, job, queue_graph, watch


def main() -> None:
    store_dir, start, seed = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    g, queue = queue_graph(store_dir)
    seen = watch(g, queue)
    camera, worker = g.producer("camera"), g.producer("worker")
    printed = 0

    def report_deliveries() -> list[int]:
        nonlocal printed
        new = seen.items[printed:]
        printed = len(seen.items)
        for i, attempt, n, dup in new:
            print(f"D {i} {attempt} {n} {int(dup)}", flush=True)
        return [i for i, *_ in new]

    g.run_until_idle()
    if len(sys.argv) > 4 and sys.argv[4] == "pause":
        for n in range(start, start + int(sys.argv[5])):
            camera.publish(JOBS, job(n))
            print(f"A {n}", flush=True)
        ids = report_deliveries()
        for i in ids:
            if i <= int(sys.argv[6]):
                worker.publish(ACKS, i)
        g.run_until_idle()
        print("ready", flush=True)
        sys.stdin.read()
        return
    choice = random.Random(seed)
    pending = report_deliveries()  # replayed after a restart
    n = start
    while True:
        camera.publish(JOBS, job(n))
        print(f"A {n}", flush=True)
        n += 1
        pending += report_deliveries()
        acked = [i for i in pending if i % 5 != 0 and choice.random() < 0.8]
        for i in acked:
            print(f"P {i}", flush=True)
            worker.publish(ACKS, i)
        g.run_until_idle()
        for i in acked:
            print(f"K {i}", flush=True)
        pending = [i for i in pending if i not in acked]


if __name__ == "__main__":
    main()
