"""Asking a Zenoh deployment from outside it: which nodes are present (their liveliness tokens)
and what each node's admin queryable answers (the same JSON requests and answers as the TCP admin
endpoint). A thin typed layer over ``_native.ZenohClient``, which waits without the GIL, so the
federation's fan-out asks many nodes at once from its threads."""

from __future__ import annotations

import json

from manyfold.cluster.admin import AdminError, AdminRejected
from manyfold.cluster.errors import ClusterError
from manyfold.zenoh.keys import NodePresence, PresenceKeyError
from manyfold.zenoh.native import native, sentence
from manyfold.zenoh.options import DEFAULT_PREFIX, check_endpoint, check_prefix


class ZenohClient:
    """A client session to the Zenoh router(s) at ``connect``, under key ``prefix``; close it
    (or use it as a context manager)."""

    def __init__(self, connect: tuple[str, ...], prefix: str = DEFAULT_PREFIX) -> None:
        for e in connect:
            check_endpoint(e, "Zenoh endpoint")
        self.connect, self.prefix = tuple(connect), check_prefix(prefix)
        n = native()
        try:
            self._client = n.ZenohClient(list(connect), prefix)
        except Exception as error:  # the binding's errors are sentences
            raise ClusterError(sentence(error)) from None

    @property
    def where(self) -> str:
        return ", ".join(self.connect)

    def nodes(self, timeout_s: float) -> tuple[tuple[NodePresence, ...], tuple[str, ...]]:
        """The nodes whose presence token the router holds now (sorted), and the keys under the
        prefix that are not a node's presence (left out, said so)."""
        try:
            keys = self._client.nodes(_ms(timeout_s))
        except Exception as error:
            raise ClusterError(f"the Zenoh router at {self.where} did not list the nodes: {sentence(error)}") from None
        found: list[NodePresence] = []
        odd: list[str] = []
        for key in keys:
            try:
                found.append(NodePresence.parse(str(key)))
            except PresenceKeyError:
                odd.append(str(key))
        return tuple(sorted(set(found))), tuple(odd)

    def ask(self, key: str, request: dict, timeout_s: float) -> dict:
        """The admin answer of the queryable at ``key`` to ``request``; :class:`AdminError` when no
        reply comes within ``timeout_s`` or it cannot be read, :class:`AdminRejected` when the
        node answered ``{"error": ...}``."""
        try:
            replies = self._client.ask(key, json.dumps(request), _ms(timeout_s))
        except Exception as error:
            raise AdminError(f"zenoh {key}: {sentence(error)}") from None
        if not replies:
            raise AdminError(f"zenoh {key}: no answer within {timeout_s:g} s")
        _reply_key, text = replies[0]
        try:
            answer = json.loads(text)
        except (TypeError, json.JSONDecodeError):
            raise AdminError(f"zenoh {key}: the answer is not JSON") from None
        if not isinstance(answer, dict):
            raise AdminError(f"zenoh {key}: the answer is not a JSON object")
        if "error" in answer:
            raise AdminRejected(f"zenoh {key}: {answer['error']}")
        return answer

    def close(self) -> None:
        client, self._client = getattr(self, "_client", None), None
        if client is not None:
            client.close()

    def __enter__(self) -> "ZenohClient":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


class ZenohAdmin:
    """One node's admin queryable as an admin client (``ask``, ``close``, a context manager), so
    code written for :class:`~manyfold.cluster.admin.AdminClient` asks through Zenoh too. Closing
    it leaves the shared session open."""

    def __init__(self, client: ZenohClient, key: str, timeout_s: float) -> None:
        self.client, self.key, self.timeout_s = client, key, timeout_s

    def ask(self, request: dict) -> dict:
        return self.client.ask(self.key, request, self.timeout_s)

    def close(self) -> None:
        pass

    def __enter__(self) -> "ZenohAdmin":
        return self

    def __exit__(self, *_exc) -> None:
        pass


def _ms(timeout_s: float) -> int:
    return max(1, int(timeout_s * 1000))


__all__ = ["ZenohAdmin", "ZenohClient"]
