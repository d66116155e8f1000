"""What every component process shares: arguments, the resolved spec, metrics, stop signal."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from pathlib import Path
from types import FrameType

from confluent_kafka import TopicPartition
from prometheus_client import start_http_server

# Message headers on the input topic (ARCHITECTURE.md), values are ASCII.
H_RUN_ID = "run_id"
H_SEQ = "seq"
H_SOURCE = "source"
H_INTENDED = "intended_ns"
H_SENT = "sent_ns"
H_REASON = "reason"


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--spec", type=Path, required=True, help="the run's resolved spec.yaml")
    parser.add_argument("--base-dir", type=Path, default=None, help="directory of the user's spec")
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap address")
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--metrics-port", type=int, required=True)
    return parser


def setup_logging() -> None:
    """One timestamped line per event on stderr, which the platform keeps as the log."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def partition_names(partitions: list[TopicPartition]) -> str:
    """`topic[0], topic[1]`: partitions as a log line names them."""
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions)


def serve_metrics(port: int) -> None:
    """Expose this process's metrics: on loopback, unless the platform says otherwise (a pod
    must answer Prometheus and its readiness probe on its own address)."""
    start_http_server(port, addr=os.environ.get("SCALELAB_METRICS_ADDR", "127.0.0.1"))


def stop_event() -> threading.Event:
    """An event set by SIGTERM or SIGINT, so loops finish their current work and exit."""
    event = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        event.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return event


Headers = list[tuple[str, str | bytes | None]]


def header_dict(headers: Headers | dict[str, str | bytes | None] | None) -> dict[str, str]:
    items = headers.items() if isinstance(headers, dict) else headers or []
    return {key: _text(value) for key, value in items}


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    return value or ""
