"""Loopback ports: free ones picked by the kernel, fixed ones checked before use."""

from __future__ import annotations

import socket

from scalelab.errors import PortInUseError

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A port that was free a moment ago (the kernel's choice for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def choose_port(component: str, fixed: int, taken: set[int]) -> int:
    """The user's fixed port if it is free (else PortInUseError), or a free one for 0."""
    if fixed:
        if fixed in taken or not port_is_free(fixed):
            raise PortInUseError(component, fixed)
        taken.add(fixed)
        return fixed
    port = free_port()
    while port in taken:
        port = free_port()
    taken.add(port)
    return port


def accepts_connections(port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout):
            return True
    except OSError:
        return False
