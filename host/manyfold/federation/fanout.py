"""Ask many nodes the same question at once. Each node gets its own connection and at most
``timeout_s`` to answer; the whole fan-out ends by ``timeout_s`` (plus a small grace), so one
dead or slow node never holds the others' answers. A node that did not answer is a
:class:`NodeReply` with ``answer=None`` and the reason: callers list it as ``unknown``."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass

from manyfold.cluster.admin import AdminClient, AdminError
from manyfold.federation.targets import Target

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

    @property
    def answered(self) -> bool:
        return self.answer is not None


def _ask(target: Target, request: dict, timeout_s: float) -> NodeReply:
    started = time.monotonic()
    try:
        with AdminClient(target.admin, timeout_s=timeout_s) as client:
            answer = client.ask(request)
        return NodeReply(target, answer, None, (time.monotonic() - started) * 1e3)
    except AdminError as error:
        return NodeReply(target, None, str(error), (time.monotonic() - started) * 1e3)


def fan_out(targets: tuple[Target, ...], request: dict, *, timeout_s: float = 1.0) -> tuple[NodeReply, ...]:
    """Ask every target ``request`` (one admin JSON object) in parallel; one reply per target,
    in the targets' order. An ``{"error": ...}`` answer, a refused connection or no answer in
    ``timeout_s`` is a reply without an answer."""
    if not targets:
        return ()
    pool = ThreadPoolExecutor(max_workers=min(WORKERS_MAX, len(targets)), thread_name_prefix="fan-out")
    try:
        futures = [pool.submit(_ask, t, request, timeout_s) for t in targets]
        deadline_s = timeout_s * (1 + (len(targets) - 1) // WORKERS_MAX) + GRACE_S
        wait(futures, timeout=deadline_s)
        replies = []
        for target, future in zip(targets, futures):
            if future.done():
                replies.append(future.result())
            else:
                replies.append(NodeReply(target, None, f"admin {target.admin}: no answer within {timeout_s:g} s", deadline_s * 1e3))
        return tuple(replies)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


__all__ = ["GRACE_S", "NodeReply", "WORKERS_MAX", "fan_out"]
