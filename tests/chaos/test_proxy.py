"""The chaos run's TCP proxy, on real loopback sockets: forwards, cuts, refuses, restores."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest

from llmwatch.broker import free_port
from tests.chaos.proxy import TcpProxy

TIMEOUT_S = 5.0


@contextlib.contextmanager
def _echo_server() -> Iterator[int]:
    """A loopback server that sends back whatever it receives; yields its port."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=_echo, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(TIMEOUT_S)
        server.close()


def _echo(conn: socket.socket) -> None:
    with conn, contextlib.suppress(OSError):
        while data := conn.recv(65536):
            conn.sendall(data)


def _round_trip(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        sock.sendall(payload)
        received = b""
        while len(received) < len(payload):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


@pytest.fixture()
def proxy() -> Iterator[TcpProxy]:
    with _echo_server() as port:
        running = TcpProxy(free_port(), port).start()
        try:
            yield running
        finally:
            running.close()


@pytest.mark.parametrize("size", [1, 70_000, 500_000])
def test_bytes_pass_through_unchanged(proxy: TcpProxy, size: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    assert _round_trip(proxy.port, payload) == payload


def test_cut_resets_live_connections_refuses_new_ones_and_restore_recovers(
    proxy: TcpProxy,
) -> None:
    live = socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT_S)
    live.sendall(b"ping")
    assert live.recv(4) == b"ping"
    assert proxy.cut() == 1
    with live:
        try:
            received = live.recv(4)
        except ConnectionResetError:
            received = b""
        assert received == b""  # the proxy shut the connection down
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT_S)
    proxy.restore()
    assert _round_trip(proxy.port, b"back") == b"back"


def test_a_proxy_cannot_forward_to_its_own_port() -> None:
    port = free_port()
    with pytest.raises(ValueError, match=f"got {port!r}"):
        TcpProxy(port, port)
