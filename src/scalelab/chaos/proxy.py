"""A TCP proxy on 127.0.0.1 between the components and the broker, with settable faults.

Each direction of each connection has a reader that stamps every chunk with the time
it may leave (now + delay, later when the bandwidth budget or a "lost" segment's
retransmission timeout says so) and a sender that forwards chunks when due: the delay
adds latency without cutting throughput, as `tc netem delay` does. Nothing leaves the
machine; with no fault set the proxy only forwards.
"""

from __future__ import annotations

import contextlib
import queue
import random
import socket
import threading
import time
from dataclasses import dataclass

CHUNK = 65536
RTO_S = 0.2  # Linux's minimum retransmission timeout: what a lost segment costs


@dataclass
class Impairment:
    delay_s: float = 0.0
    loss: float = 0.0
    bandwidth_bps: float = 0.0  # bytes/s, 0 = unlimited


class TcpProxy:
    def __init__(self, upstream: tuple[str, int], port: int = 0):
        self.upstream = upstream
        self.impairment = Impairment()
        self.server = socket.create_server(("127.0.0.1", port))
        self.port = int(self.server.getsockname()[1])
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._next_free = 0.0  # bandwidth: when the link is free again (shared by all)
        self._sockets: list[socket.socket] = []
        self._rng = random.Random(0)
        self._thread = threading.Thread(target=self._accept, daemon=True, name="proxy")

    def start(self) -> TcpProxy:
        self._thread.start()
        return self

    def set(self, impairment: Impairment) -> None:
        self.impairment = impairment

    def clear(self) -> None:
        self.impairment = Impairment()

    def close(self) -> None:
        self._stop.set()
        self.server.close()
        for sock in list(self._sockets):
            _close(sock)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            self._sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                self._pipe(src, dst)

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        chunks: queue.Queue[tuple[float, bytes] | None] = queue.Queue()
        threading.Thread(target=self._read, args=(src, dst, chunks), daemon=True).start()
        threading.Thread(target=self._send, args=(dst, src, chunks), daemon=True).start()

    def _read(
        self, src: socket.socket, dst: socket.socket, out: queue.Queue[tuple[float, bytes] | None]
    ) -> None:
        try:
            while data := src.recv(CHUNK):
                out.put((self._due(len(data)), data))
        except OSError:
            pass
        out.put(None)

    def _due(self, size: int) -> float:
        imp, now = self.impairment, time.monotonic()
        due = now + imp.delay_s
        if imp.loss and self._rng.random() < imp.loss:
            due += RTO_S
        if imp.bandwidth_bps:
            with self._lock:
                start = max(now, self._next_free)
                self._next_free = start + size / imp.bandwidth_bps
            due = max(due, self._next_free)
        return due

    def _send(
        self,
        dst: socket.socket,
        src: socket.socket,
        chunks: queue.Queue[tuple[float, bytes] | None],
    ) -> None:
        last_due = 0.0
        try:
            while (item := chunks.get()) is not None:
                due = max(item[0], last_due)  # never reorder a byte stream
                last_due = due
                time.sleep(max(0.0, due - time.monotonic()))
                dst.sendall(item[1])
        except OSError:
            pass
        _close(dst)
        _close(src)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
