"""Readiness probes that check the real thing: HTTPS health endpoints and a DNS answer."""

from __future__ import annotations

import random
import socket
import ssl
import struct
import urllib.error
import urllib.request

from scalelab.localcluster.certs import Pki


def https_get(url: str, pki: Pki, client: str = "admin", timeout: float = 3.0) -> tuple[int, str]:
    """GET `url` with the cluster CA and a client certificate; (status, body), 0 if unreachable."""
    ctx = ssl.create_default_context(cafile=str(pki.cert("ca")))
    ctx.load_cert_chain(str(pki.cert(client)), str(pki.key(client)))
    return _get(url, timeout, ctx)


def http_get(url: str, timeout: float = 3.0) -> tuple[int, str]:
    return _get(url, timeout, None)


def _get(url: str, timeout: float, ctx: ssl.SSLContext | None) -> tuple[int, str]:
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ctx)
    )
    try:
        with opener.open(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (OSError, ssl.SSLError):
        return 0, ""


def dns_query_packet(name: str, query_id: int) -> bytes:
    """A DNS query for the A record of `name` (recursion desired)."""
    header = struct.pack(">HHHHHH", query_id, 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split("."))
    return header + labels + b"\0" + struct.pack(">HH", 1, 1)


def _skip_name(data: bytes, pos: int) -> int:
    while True:
        length = data[pos]
        if length & 0xC0 == 0xC0:
            return pos + 2
        if length == 0:
            return pos + 1
        pos += 1 + length


def parse_a_records(data: bytes, query_id: int) -> tuple[int, list[str]]:
    """(rcode, IPv4 addresses) of a DNS response to `query_id`."""
    rid, flags, qd, an, _ns, _ar = struct.unpack(">HHHHHH", data[:12])
    if rid != query_id:
        raise ValueError(f"response id {rid} does not match query id {query_id}")
    pos = 12
    for _ in range(qd):
        pos = _skip_name(data, pos) + 4
    addresses = []
    for _ in range(an):
        pos = _skip_name(data, pos)
        rtype, _cls, _ttl, rdlen = struct.unpack(">HHIH", data[pos : pos + 10])
        pos += 10
        if rtype == 1 and rdlen == 4:
            addresses.append(socket.inet_ntoa(data[pos : pos + 4]))
        pos += rdlen
    return flags & 0x000F, addresses


def resolve(server: str, name: str, timeout: float = 2.0) -> tuple[int, list[str]]:
    """Ask `server`:53 over UDP for `name`; (rcode, addresses). Raises OSError on no answer."""
    query_id = random.randint(1, 0xFFFF)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(dns_query_packet(name, query_id), (server, 53))
        data, _ = sock.recvfrom(4096)
    return parse_a_records(data, query_id)
