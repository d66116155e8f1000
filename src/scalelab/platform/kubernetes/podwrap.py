"""In-pod supervisor of one component (standard library only: it runs in the image).

    python -m scalelab.platform.kubernetes.podwrap --data /data -- python -m ... ARGS

It runs the component as a child and gives the platform what a local
process gives it:

- SIGUSR1 (sent by `scalelab` through exec): ask the component to stop
  (SIGTERM to the child, which drains) and keep the container up afterwards,
  so its files (qos.parquet, producer.json) can be copied out;
- SIGTERM (pod deletion): stop the child, then exit with its code;
- the child's exit code lands in `<data>/.scalelab/exit-code`; a clean exit
  keeps the container up (a Job's pod must not end before its files are
  read), a failure ends it with that code so the kubelet reports it;
- SIGUSR2: end a container kept up, with the child's exit code.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType

STATE_DIR = ".scalelab"
EXIT_FILE = "exit-code"


class Supervisor:
    def __init__(self, argv: list[str], data: Path):
        self.argv = argv
        self.state = data / STATE_DIR
        self.child: subprocess.Popen[bytes] | None = None
        self.stop_requested = False
        self.terminating = False
        self.released = threading.Event()

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGUSR2:
            self.released.set()
            return
        if signum == signal.SIGTERM:
            self.terminating = True
            self.released.set()
        else:
            self.stop_requested = True
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signal.SIGTERM)

    def run(self) -> int:
        self.state.mkdir(parents=True, exist_ok=True)
        (self.state / EXIT_FILE).unlink(missing_ok=True)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(signum, self.on_signal)
        self.child = subprocess.Popen(self.argv)
        code = self._wait_child()
        self._record(code)
        print(f"scalelab-podwrap: component exited with code {code}", flush=True)
        if self.terminating or (code != 0 and not self.stop_requested):
            return code
        while not self.released.wait(0.5):
            pass
        return code

    def _wait_child(self) -> int:
        assert self.child is not None
        code = self.child.wait()
        return 128 - code if code < 0 else code  # killed by a signal: the shell's 128+N

    def _record(self, code: int) -> None:
        tmp = self.state / f"{EXIT_FILE}.tmp"
        tmp.write_text(str(code))
        os.replace(tmp, self.state / EXIT_FILE)


def exit_file(data: str) -> str:
    return f"{data}/{STATE_DIR}/{EXIT_FILE}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="scalelab's in-pod supervisor")
    parser.add_argument("--data", type=Path, required=True, help="the pod's data volume")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the component")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no component command after --")
    return Supervisor(command, args.data).run()


if __name__ == "__main__":
    sys.exit(main())
