"""Ask many nodes the same question at once. Each node gets its own connection (or, through
Zenoh, its own query on the shared session) and at most
``timeout_s`` to answer; the whole fan-out ends by ``timeout_s`` (plus a small grace), so one
dead or slow node never holds the others' answers. A node that did not answer is a
:class:`NodeReply` with ``answer=None`` and the reason: callers list it as ``unknown``."""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

from manyfold.cluster.admin import AdminError, AdminRejected
from manyfold.federation.targets import Target, open_admin

WORKERS_MAX = 32
"""Nodes asked at the same time at most; more wait their turn within the same deadline."""
GRACE_S = 0.25
"""Past the per-node timeout, how long the fan-out waits for a connection's own timeout to fire."""


@dataclass(frozen=True)
class NodeReply:
    """One node's reply: its answer object, or ``None`` and why it is unknown."""

    target: Target
    answer: dict | None
    error: str | None
    elapsed_ms: float
    rejected: bool = False
    """The node answered ``{"error": ...}``: it rejected the request itself (``error`` says why)."""

    @property
    def answered(self) -> bool:
        return self.answer is not None


def _ask(target: Target, request: dict, timeout_s: float) -> NodeReply:
    started = time.monotonic()
    try:
        with open_admin(target, timeout_s) as client:
            answer = client.ask(request)
        return NodeReply(target, answer, None, (time.monotonic() - started) * 1e3)
    except AdminError as error:
        return NodeReply(target, None, str(error), (time.monotonic() - started) * 1e3, isinstance(error, AdminRejected))


def fan_out(targets: tuple[Target, ...], request: dict, *, timeout_s: float = 1.0) -> tuple[NodeReply, ...]:
    """Ask every target ``request`` (one admin JSON object) in parallel; one reply per target,
    in the targets' order. An ``{"error": ...}`` answer, a refused connection or no answer in
    ``timeout_s`` is a reply without an answer. The askers are daemon threads: a caller that
    stops (Ctrl-C) does not wait for a silent node's timeout."""
    if not targets:
        return ()
    replies: list[NodeReply | None] = [None] * len(targets)
    jobs: queue.SimpleQueue[int] = queue.SimpleQueue()
    for i in range(len(targets)):
        jobs.put(i)
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            try:
                i = jobs.get_nowait()
            except queue.Empty:
                return
            replies[i] = _ask(targets[i], request, timeout_s)

    workers = [threading.Thread(target=worker, name="fan-out", daemon=True) for _ in range(min(WORKERS_MAX, len(targets)))]
    for w in workers:
        w.start()
    deadline_s = timeout_s * (1 + (len(targets) - 1) // WORKERS_MAX) + GRACE_S
    end = time.monotonic() + deadline_s
    try:
        for w in workers:
            w.join(max(0.0, end - time.monotonic()))
    finally:
        stop.set()  # targets not yet asked stay unasked
    return tuple(
        reply if reply is not None else NodeReply(target, None, f"admin {target.where}: no answer within {timeout_s:g} s", deadline_s * 1e3)
        for target, reply in zip(targets, replies)
    )


__all__ = ["GRACE_S", "NodeReply", "WORKERS_MAX", "fan_out"]
