"""Ctrl-C while the CLI is still starting, remembered for the run that follows.

The default SIGINT handler raises KeyboardInterrupt wherever the main thread is;
during start-up that is often inside a third-party import, which may swallow it,
and the run then went ahead as if nothing had happened. The CLI installs this
handler first: it still raises, and it also remembers, so `Interrupts` can abort
the run at its first checkpoint.
"""

from __future__ import annotations

import signal
from types import FrameType

RECEIVED: list[int] = []


def _record(signum: int, frame: FrameType | None) -> None:
    RECEIVED.append(signum)
    raise KeyboardInterrupt


def install() -> None:
    """Remember every SIGINT from now on (it still raises KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, _record)


def take() -> list[int]:
    """The signals received so far, forgotten once taken."""
    taken = RECEIVED[:]
    RECEIVED.clear()
    return taken
