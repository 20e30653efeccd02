"""The web view: a stdlib ``ThreadingHTTPServer`` (no framework) serving

- ``/``: the page (``static/index.html``, ``monitor.js``, ``monitor.css``: vanilla JS, no library);
- ``/graph.svg``: the manifest drawn as ``manyfold graph`` draws it (Graphviz), over which the
  page lays the live node states, link counters and taints;
- ``/snapshot.json``: the last snapshot (as ``manyfold monitor --json`` prints it);
- ``/events``: server-sent events, one ``data:`` line of snapshot JSON per poll.

Bounded: at most ``clients_max`` event streams at once (one more gets ``503`` with a
``Retry-After`` and a sentence, and the page retries); each stream has a send queue of
``queue_max`` snapshots, and a client too slow to take them loses the oldest (every snapshot is
the whole state, so the newest is the one that matters). Only the named files are served.
"""

from __future__ import annotations

import ipaddress
import json
import queue
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

from manyfold.cluster.address import Address
from manyfold.cluster.errors import ClusterError
from manyfold.monitor.model import ClusterSnapshot

CLIENTS_MAX = 8
"""Event streams served at once."""
QUEUE_MAX = 4
"""Snapshots waiting for one slow event stream (older ones are dropped)."""
KEEPALIVE_S = 15.0
"""A comment line on an idle event stream this often, so a dead client is noticed."""
RETRY_AFTER_S = 5
STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/static/monitor.js": ("monitor.js", "text/javascript; charset=utf-8"),
    "/static/monitor.css": ("monitor.css", "text/css; charset=utf-8"),
}
_CLOSED = object()


def check_bind(address: Address, public: bool) -> None:
    """Refuse a non-loopback address unless ``public``: the page shows the cluster's topology,
    counters and taints to anyone who can reach it, without authentication."""
    if public or address.host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(address.host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ClusterError(
            f"--http {address}: not a loopback address; the page has no authentication, so serve it on "
            "127.0.0.1 (and tunnel), or pass --http-public to serve it on this address anyway"
        )


class Hub:
    """The last snapshot, and a bounded send queue per event stream."""

    def __init__(self, clients_max: int = CLIENTS_MAX, queue_max: int = QUEUE_MAX) -> None:
        self.clients_max, self.queue_max = clients_max, queue_max
        self._lock = threading.Lock()
        self._clients: set[queue.Queue] = set()
        self._last: str | None = None
        self.refused = 0
        self.dropped = 0

    @property
    def last(self) -> str | None:
        return self._last

    def join(self) -> queue.Queue | None:
        """A new stream's queue (holding the last snapshot), or None when ``clients_max`` are served."""
        with self._lock:
            if len(self._clients) >= self.clients_max:
                self.refused += 1
                return None
            q: queue.Queue = queue.Queue(maxsize=self.queue_max)
            if self._last is not None:
                q.put_nowait(self._last)
            self._clients.add(q)
            return q

    def leave(self, q: queue.Queue) -> None:
        with self._lock:
            self._clients.discard(q)

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._clients)

    def publish(self, snap: ClusterSnapshot) -> None:
        text = json.dumps(snap.to_dict(), separators=(",", ":"))
        with self._lock:
            self._last = text
            for q in self._clients:
                self._offer(q, text)

    def _offer(self, q: queue.Queue, item: object) -> None:
        while True:
            try:
                q.put_nowait(item)
                return
            except queue.Full:
                try:
                    q.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def close(self) -> None:
        """Ends every stream."""
        with self._lock:
            for q in self._clients:
                self._offer(q, _CLOSED)


def _static(name: str) -> bytes:
    return resources.files("manyfold.monitor").joinpath("static", name).read_bytes()


class _Handler(BaseHTTPRequestHandler):
    server: "MonitorServer"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:  # the monitor's own output stays clean
        pass

    def _send(self, status: int, body: bytes, content_type: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path in STATIC:
            name, content_type = STATIC[path]
            self._send(200, _static(name), content_type)
        elif path == "/graph.svg":
            if self.server.svg is None:
                self._send(404, (self.server.svg_note + "\n").encode(), "text/plain; charset=utf-8")
            else:
                self._send(200, self.server.svg.encode(), "image/svg+xml")
        elif path == "/snapshot.json":
            last = self.server.hub.last
            if last is None:
                self._send(503, b"no poll yet\n", "text/plain; charset=utf-8", {"Retry-After": "1"})
            else:
                self._send(200, last.encode(), "application/json")
        elif path == "/events":
            self._events()
        else:
            self._send(404, f"no such page: {path}\n".encode(), "text/plain; charset=utf-8")

    def _events(self) -> None:
        hub = self.server.hub
        q = hub.join()
        if q is None:
            note = f"this monitor serves at most {hub.clients_max} event streams at once; retry in {RETRY_AFTER_S} s\n"
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, note.encode(), "text/plain; charset=utf-8", {"Retry-After": str(RETRY_AFTER_S)})
            return
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(f"retry: {RETRY_AFTER_S * 1000}\n\n".encode())
            self.wfile.flush()
            while True:
                try:
                    item = q.get(timeout=KEEPALIVE_S)
                except queue.Empty:
                    self.wfile.write(b": keepalive\n\n")
                    self.wfile.flush()
                    continue
                if item is _CLOSED:
                    return
                self.wfile.write(b"data: " + item.encode() + b"\n\n")
                self.wfile.flush()
        except OSError:  # the client went away
            pass
        finally:
            hub.leave(q)
            self.close_connection = True


class MonitorServer(ThreadingHTTPServer):
    """The web view's server (a thread per connection, daemon threads)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: Address, hub: Hub, svg: str | None, svg_note: str = "") -> None:
        self.hub, self.svg, self.svg_note = hub, svg, svg_note
        try:
            super().__init__((address.host, address.port), _Handler)
        except OSError as error:
            raise ClusterError(f"--http {address}: cannot listen there ({error.strerror or error})") from None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2}, name="monitor-http", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.hub.close()
        self.shutdown()
        self.server_close()


PAD = "\u2007" * 26
"""A line of figure spaces under each link's label in the drawing: Graphviz makes room for it,
and the page writes the link's live counters there (two lines)."""


def monitor_dot(manifest) -> str:
    """``manyfold graph``'s DOT text of the manifest, with room for two lines of counters under
    each link label."""
    import re

    from manyfold.manifest.draw import to_dot

    return re.sub(r'label="link ([^"\\]+)"', lambda m: f'label="link {m.group(1)}\\n{PAD}\\n{PAD}"', to_dot(manifest))


def manifest_svg(manifest) -> tuple[str | None, str]:
    """The manifest drawn as SVG by Graphviz's ``dot`` (as ``manyfold graph`` draws it), or
    None and why not."""
    import shutil
    import subprocess

    if manifest is None:
        return None, "no manifest: give --cluster a plan file, or --manifest FILE"
    dot = shutil.which("dot")
    if dot is None:
        return None, "drawing needs Graphviz's dot program: install it (apt install graphviz); the tables work without it"
    result = subprocess.run([dot, "-Tsvg"], input=monitor_dot(manifest), capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        return None, f"dot failed: {result.stderr.strip()}"
    return result.stdout, ""


__all__ = ["CLIENTS_MAX", "Hub", "KEEPALIVE_S", "MonitorServer", "QUEUE_MAX", "check_bind", "manifest_svg", "monitor_dot"]
