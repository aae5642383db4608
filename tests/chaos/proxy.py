"""A loopback TCP proxy that can play "the broker is down": refuse new connections and cut live ones.

Tansu keeps its topics in memory (the bundled build has only the ``memory://`` and ``s3://`` storage
engines), so stopping the real broker would lose every topic and offset. The chaos run instead puts this
proxy between every client (SDK, worker, sink) and the broker, and launches Tansu with the proxy's port
as its advertised listener, so that the addresses clients learn from metadata also lead through it.

- :meth:`TcpProxy.cut` closes the listening socket (new connections are refused, as with a stopped
  broker) and shuts down every live connection in both directions (clients see the connection reset).
- :meth:`TcpProxy.restore` listens again on the same port.

Guarantees: bytes are forwarded unchanged and in order per connection; nothing is forwarded while cut.
Everything stays on 127.0.0.1. What can block: :meth:`restore` retries binding the port for at most
:data:`REBIND_TIMEOUT_S`; :meth:`close` joins the accept thread for at most :data:`JOIN_TIMEOUT_S`.
Connection threads are daemons and end when either side closes.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from typing import Final

__all__ = ["REBIND_TIMEOUT_S", "TcpProxy"]

log = logging.getLogger(__name__)

HOST: Final = "127.0.0.1"
CHUNK_BYTES: Final = 256 * 1024
ACCEPT_POLL_S: Final = 0.2
REBIND_TIMEOUT_S: Final = 10.0
JOIN_TIMEOUT_S: Final = 5.0
BACKLOG: Final = 128


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to ``127.0.0.1:<target_port>``; see the module docstring."""

    def __init__(self, port: int, target_port: int) -> None:
        if port == target_port:
            raise ValueError(f"the proxy cannot listen on its target's port, got {port!r}")
        self.port = port
        self.target_port = target_port
        self.connections = 0  # accepted since start, for reports
        self._lock = threading.Lock()
        self._live: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._accepting: threading.Thread | None = None

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def up(self) -> bool:
        return self._listener is not None

    def start(self) -> TcpProxy:
        self.restore()
        return self

    def restore(self) -> None:
        """Listen again (no-op when already listening)."""
        if self._listener is not None:
            return
        listener = _bind(self.port)
        self._listener = listener
        self._accepting = threading.Thread(
            target=self._accept_loop, args=(listener,), name=f"proxy-{self.port}", daemon=True
        )
        self._accepting.start()

    def cut(self) -> int:
        """Refuse new connections and reset live ones; returns how many were cut."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if self._accepting is not None:
            self._accepting.join(JOIN_TIMEOUT_S)
            self._accepting = None
        with self._lock:
            live, self._live = self._live, set()
        for sock in live:
            _shut(sock)
        return len(live) // 2

    def close(self) -> None:
        self.cut()

    def _accept_loop(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:  # closed by cut()
                return
            self._open(client)

    def _open(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection((HOST, self.target_port), timeout=JOIN_TIMEOUT_S)
        except OSError as exc:
            log.warning("proxy %d: cannot reach %d: %s", self.port, self.target_port, exc)
            _shut(client)
            return
        for sock in (client, upstream):
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._live.update((client, upstream))
            self.connections += 1
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(CHUNK_BYTES):
                dst.sendall(data)
        except OSError:
            pass  # reset by the peer or by cut()
        finally:
            with self._lock:
                self._live.difference_update((src, dst))
            _shut(src)
            _shut(dst)


def _bind(port: int) -> socket.socket:
    """A listening socket on ``127.0.0.1:port``, retrying while the port is still held."""
    deadline = time.monotonic() + REBIND_TIMEOUT_S
    while True:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            sock.close()
            if time.monotonic() >= deadline:
                raise OSError(f"cannot listen on {HOST}:{port} again: {exc}") from exc
            time.sleep(ACCEPT_POLL_S)
            continue
        sock.listen(BACKLOG)
        sock.settimeout(ACCEPT_POLL_S)
        return sock


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
