"""The fallback Kafka-wire broker: librdkafka's mock cluster, driven through ctypes.

The mock cluster ships inside the confluent-kafka wheel the project already needs
(``site-packages/confluent_kafka.libs/librdkafka*.so``), so it works wherever the SDK installs. Unlike
Tansu it gets offsets right: high watermarks, consumer lag and idempotent or transactional producers
behave as on Apache Kafka, also after multi-record batches.

Quirks (librdkafka marks the ``rd_kafka_mock_*`` API experimental; checked with librdkafka 2.16):

- **It lives inside the creating process.** The broker runs on librdkafka threads of whatever process
  called :meth:`MockClusterBroker.start`, and dies with it. Other processes (a worker, a sink) reach it
  over TCP on loopback, but the creating process must outlive them (``wait()`` keeps it up). A fork does
  not copy the broker threads: create the cluster after forking, never before.
- **No CreateTopics API.** Admin clients and Faust cannot create topics: pass every topic (with the
  partition count the consumers expect) to the constructor or :meth:`~MockClusterBroker.create_topic`,
  and run Faust with ``topic_allow_declare=False``. :func:`streams.admin.ensure_topics` then only
  verifies them. Topic configs (retention, max message size) are ignored.
- **Producers auto-create unknown topics** (with the mock's default partition count, 4) when they ask
  for their metadata, even though production Kafka here has auto-creation off: create topics first.
- **Use ``session.timeout.ms=6000``** (llmwatch's default session timeout) so a consumer that left
  without a LeaveGroup is replaced quickly. The group's initial rebalance delay is set to
  ``initial_rebalance_delay_ms`` (default 0, Apache Kafka's is 3 s), so a group forms at once.
- Control calls are slow when the cluster is idle: a topic creation sometimes waits ~1 s for the
  mock's thread to wake up, so :meth:`MockClusterBroker.start` with five topics takes 0-2 s (seen with
  librdkafka 2.16). Client requests over TCP are not affected.
- Storage is in memory and the port is chosen by the kernel at each start: a restarted broker is empty
  (the launcher re-creates the topics it knows) and has a new :attr:`~MockClusterBroker.bootstrap`.

What can block: :meth:`MockClusterBroker.start` waits up to ``timeout_s`` for the cluster to answer
metadata, plus up to ~1 s per topic it creates (as can :meth:`~MockClusterBroker.create_topic`);
:meth:`MockClusterBroker.wait` blocks until :meth:`~MockClusterBroker.stop` is called (from
another thread or a signal handler).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import confluent_kafka
from confluent_kafka.admin import AdminClient

from llmwatch.broker import BrokerError, wait_for_broker
from streams.admin import TopicMismatchError
from streams.topics import TopicSpec

__all__ = [
    "DEFAULT_INITIAL_REBALANCE_DELAY_MS",
    "MockClusterBroker",
    "find_librdkafka",
]

log = logging.getLogger(__name__)

DEFAULT_INITIAL_REBALANCE_DELAY_MS: Final = 0
# librdkafka's log level for the handle that owns the cluster (syslog levels: 3 = errors only).
_LOG_LEVEL: Final = b"3"
_ERRSTR_SIZE: Final = 512
_RD_KAFKA_PRODUCER: Final = 0
_RD_KAFKA_CONF_OK: Final = 0
_ERR_NO_ERROR: Final = 0
_ERR_TOPIC_ALREADY_EXISTS: Final = 36
_REPLICATION_FACTOR: Final = 1
_BROKER_COUNT: Final = 1
_METADATA_TIMEOUT_S: Final = 5.0
_REQUIRED_SYMBOL: Final = "rd_kafka_mock_cluster_new"


def find_librdkafka() -> Path:
    """The librdkafka shared library confluent-kafka uses: its bundled copy, else the system one."""
    package_dir = Path(confluent_kafka.__file__).resolve().parent
    bundled = sorted((package_dir.parent / "confluent_kafka.libs").glob("librdkafka*.so*"))
    if bundled:
        return bundled[0]
    system = ctypes.util.find_library("rdkafka")
    if system is None:
        raise BrokerError(
            f"no librdkafka found: neither bundled next to {package_dir} nor on the library path; "
            "install the confluent-kafka wheel from PyPI"
        )
    return Path(system)


class _Librdkafka:
    """Typed ctypes bindings for the few librdkafka calls the mock cluster needs."""

    def __init__(self, path: Path) -> None:
        try:
            lib = ctypes.CDLL(str(path))
        except OSError as exc:
            raise BrokerError(f"cannot load librdkafka from {str(path)!r}: {exc}") from exc
        if not hasattr(lib, _REQUIRED_SYMBOL):
            raise BrokerError(f"librdkafka at {str(path)!r} has no mock cluster API")
        vp, cp, i = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
        self._sig(lib.rd_kafka_conf_new, [], vp)
        self._sig(lib.rd_kafka_conf_set, [vp, cp, cp, cp, ctypes.c_size_t], i)
        self._sig(lib.rd_kafka_conf_destroy, [vp], None)
        self._sig(lib.rd_kafka_new, [i, vp, cp, ctypes.c_size_t], vp)
        self._sig(lib.rd_kafka_destroy, [vp], None)
        self._sig(lib.rd_kafka_err2str, [i], cp)
        self._sig(lib.rd_kafka_mock_cluster_new, [vp, i], vp)
        self._sig(lib.rd_kafka_mock_cluster_destroy, [vp], None)
        self._sig(lib.rd_kafka_mock_cluster_bootstraps, [vp], cp)
        self._sig(lib.rd_kafka_mock_topic_create, [vp, cp, i, i], i)
        self._sig(lib.rd_kafka_mock_group_initial_rebalance_delay_ms, [vp, ctypes.c_int32], None)
        self._lib = lib

    @staticmethod
    def _sig(func: Any, argtypes: list[Any], restype: Any) -> None:
        func.argtypes = argtypes
        func.restype = restype

    def new_producer_handle(self) -> int:
        """An ``rd_kafka_t`` producer without brokers: the owner of the mock cluster."""
        errstr = ctypes.create_string_buffer(_ERRSTR_SIZE)
        conf = self._lib.rd_kafka_conf_new()
        res = self._lib.rd_kafka_conf_set(conf, b"log_level", _LOG_LEVEL, errstr, _ERRSTR_SIZE)
        if res != _RD_KAFKA_CONF_OK:
            self._lib.rd_kafka_conf_destroy(conf)
            raise BrokerError(f"rd_kafka_conf_set(log_level) failed: {errstr.value.decode()}")
        handle = self._lib.rd_kafka_new(_RD_KAFKA_PRODUCER, conf, errstr, _ERRSTR_SIZE)
        if not handle:  # on failure the caller still owns conf
            self._lib.rd_kafka_conf_destroy(conf)
            raise BrokerError(f"rd_kafka_new failed: {errstr.value.decode()}")
        return int(handle)

    def destroy_handle(self, handle: int) -> None:
        self._lib.rd_kafka_destroy(handle)

    def new_cluster(self, handle: int, brokers: int) -> int:
        cluster = self._lib.rd_kafka_mock_cluster_new(handle, brokers)
        if not cluster:
            raise BrokerError(f"rd_kafka_mock_cluster_new failed for {brokers} broker(s)")
        return int(cluster)

    def destroy_cluster(self, cluster: int) -> None:
        self._lib.rd_kafka_mock_cluster_destroy(cluster)

    def bootstraps(self, cluster: int) -> str:
        value = self._lib.rd_kafka_mock_cluster_bootstraps(cluster)
        return bytes(value).decode() if value else ""

    def create_topic(self, cluster: int, name: str, partitions: int) -> int:
        """Create a topic; return librdkafka's error code (0 on success)."""
        code = self._lib.rd_kafka_mock_topic_create(
            cluster, name.encode(), partitions, _REPLICATION_FACTOR
        )
        return int(code)

    def error_text(self, code: int) -> str:
        return bytes(self._lib.rd_kafka_err2str(code)).decode()

    def set_initial_rebalance_delay(self, cluster: int, delay_ms: int) -> None:
        self._lib.rd_kafka_mock_group_initial_rebalance_delay_ms(cluster, delay_ms)


class MockClusterBroker:
    """A one-broker librdkafka mock cluster in this process, with the given topics pre-created.

    Same surface as :class:`llmwatch.broker.TansuBroker` (start, stop, bootstrap, running, wait,
    context manager), plus :meth:`create_topic` because the cluster has no CreateTopics API.
    """

    def __init__(
        self,
        topics: Sequence[TopicSpec] = (),
        *,
        initial_rebalance_delay_ms: int = DEFAULT_INITIAL_REBALANCE_DELAY_MS,
        library: Path | None = None,
    ) -> None:
        if initial_rebalance_delay_ms < 0:
            raise ValueError(
                f"initial_rebalance_delay_ms must be >= 0, got {initial_rebalance_delay_ms!r}"
            )
        self._specs: dict[str, TopicSpec] = {}
        for spec in topics:
            self._check(spec)
            self._specs[spec.name] = spec
        self._rebalance_delay_ms = initial_rebalance_delay_ms
        self._library = library
        self._lib: _Librdkafka | None = None
        self._handle: int | None = None
        self._cluster: int | None = None
        self._bootstrap: str | None = None
        # Reentrant: a signal handler that calls stop() runs on the thread that may hold the lock.
        self._lock = threading.RLock()
        self._stopped = threading.Event()

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:<port>``; the port is chosen by the kernel when the cluster starts."""
        if self._bootstrap is None:
            raise BrokerError("the mock cluster is not running: call start() first")
        return self._bootstrap

    @property
    def running(self) -> bool:
        return self._cluster is not None

    @property
    def topics(self) -> list[TopicSpec]:
        """Every topic this launcher creates (constructor topics and create_topic calls)."""
        return list(self._specs.values())

    def start(self, timeout_s: float = 15.0) -> MockClusterBroker:
        with self._lock:
            if self.running:
                return self
            if self._lib is None:
                self._lib = _Librdkafka(self._library or find_librdkafka())
            handle = self._lib.new_producer_handle()
            try:
                cluster = self._lib.new_cluster(handle, _BROKER_COUNT)
            except BrokerError:
                self._lib.destroy_handle(handle)
                raise
            self._lib.set_initial_rebalance_delay(cluster, self._rebalance_delay_ms)
            self._handle, self._cluster = handle, cluster
            self._bootstrap = self._lib.bootstraps(cluster)
            self._stopped.clear()
            try:
                for spec in self._specs.values():
                    self._create(spec)
                wait_for_broker(self.bootstrap, timeout_s)
            except BaseException:
                self.stop()
                raise
            log.info("mock Kafka cluster on %s with %d topics", self._bootstrap, len(self._specs))
            return self

    def create_topic(self, spec: TopicSpec) -> bool:
        """Create ``spec`` on the running cluster (and on every later start); False if it existed.

        Raises :class:`streams.admin.TopicMismatchError` when the topic exists with another partition
        count, like :func:`streams.admin.ensure_topics`.
        """
        with self._lock:
            if not self.running:
                raise BrokerError(
                    f"cannot create topic {spec.name!r}: the mock cluster is not running"
                )
            self._check(spec)
            created = self._create(spec)
            self._specs[spec.name] = spec
            return created

    def stop(self) -> None:
        """Destroy the cluster; connected clients see the broker disappear. Idempotent."""
        with self._lock:
            cluster, handle = self._cluster, self._handle
            self._cluster = self._handle = self._bootstrap = None
            if self._lib is not None:
                if cluster is not None:
                    self._lib.destroy_cluster(cluster)
                if handle is not None:
                    self._lib.destroy_handle(handle)
            self._stopped.set()

    def wait(self) -> int:
        """Block until :meth:`stop` is called (used by a long-lived broker process); return 0."""
        if self.running:
            self._stopped.wait()
        return 0

    def __enter__(self) -> MockClusterBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _check(self, spec: TopicSpec) -> None:
        if spec.partitions < 1:
            raise ValueError(f"topic {spec.name!r} needs >= 1 partition, got {spec.partitions!r}")
        known = self._specs.get(spec.name)
        if known is not None and known.partitions != spec.partitions:
            raise TopicMismatchError(
                f"topic {spec.name!r} is already declared with {known.partitions} partitions, "
                f"got {spec.partitions}"
            )

    def _create(self, spec: TopicSpec) -> bool:
        assert self._lib is not None and self._cluster is not None
        code = self._lib.create_topic(self._cluster, spec.name, spec.partitions)
        if code == _ERR_NO_ERROR:
            return True
        if code != _ERR_TOPIC_ALREADY_EXISTS:
            raise BrokerError(
                f"could not create topic {spec.name!r} ({spec.partitions} partitions) on the mock "
                f"cluster: {self._lib.error_text(code)}"
            )
        existing = self._partition_count(spec.name)
        if existing != spec.partitions:
            raise TopicMismatchError(
                f"topic {spec.name!r} has {existing} partitions on the mock cluster, "
                f"configured {spec.partitions}"
            )
        return False

    def _partition_count(self, name: str) -> int:
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        meta = admin.list_topics(topic=name, timeout=_METADATA_TIMEOUT_S).topics.get(name)
        return 0 if meta is None else len(meta.partitions)
