"""Port-forwards: a loopback listener copying each connection to a stream of its own."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest

from scalelab.errors import PortInUseError
from scalelab.platform.kubernetes.portforward import PortForward


def echo_remote(opened: list[Any]) -> Any:
    """Like `pod_opener`: each call is a new stream, here one end of a socketpair whose other
    end upper-cases what it gets (the 'pod')."""

    def open_stream() -> socket.socket:
        ours, theirs = socket.socketpair()

        def serve() -> None:
            with theirs:
                while data := theirs.recv(4096):
                    theirs.sendall(data.upper())

        threading.Thread(target=serve, daemon=True).start()
        opened.append(ours)
        return ours

    return open_stream


def test_connections_go_through_their_own_stream() -> None:
    opened: list[Any] = []
    forward = PortForward("test", echo_remote(opened))
    try:
        assert forward.address.startswith("127.0.0.1:")
        for word in (b"kafka", b"prometheus"):
            with socket.create_connection(("127.0.0.1", forward.port), timeout=5) as client:
                client.sendall(word)
                assert client.recv(100) == word.upper()
        assert len(opened) == 2
    finally:
        forward.close()


def test_a_stream_that_cannot_open_drops_only_that_connection() -> None:
    def failing() -> Any:
        raise OSError("pod restarting")

    forward = PortForward("test", failing)
    try:
        with socket.create_connection(("127.0.0.1", forward.port), timeout=5) as client:
            assert client.recv(10) == b""
        assert forward.errors == ["test: pod restarting"]
    finally:
        forward.close()


def test_a_taken_port_is_named() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        with pytest.raises(PortInUseError) as caught:
            PortForward("kafka-0", echo_remote([]), taken.getsockname()[1])
    assert caught.value.component == "kafka-0"
