"""The seed project's feeder send loop, re-implemented from its published behaviour.

Only for comparison (`rate_accuracy.py`). What the seed's feeder
(wickstjo/aalto-ensure, the debnera/aalto-ensure-cluster fork:
``data_feeder/feeder.py`` and ``utilz/kafka_utils.py``) does, and this does:

- ``num_threads`` (4) threads, each with its own ``confluent_kafka.Producer``
  with librdkafka's defaults (only ``bootstrap.servers`` set);
- a shared cooldown of ``1 / (rate / num_threads)`` seconds;
- every thread busy-waits until a common start 3 s ahead, then loops:
  ``started = time.time()``; take the next frame; ``produce(topic, value=frame,
  on_delivery=callback)``; ``poll(1)`` ("await the ack before sending the next
  message": it returns once a delivery report was served, or after 1 s);
  ``sleep(max(cooldown - (time.time() - started), 0))``;
- a handler thread sleeps for the duration, then stops the threads (each
  finishes the message it is on).

Nothing is fetched: the same frames as scalelab's source are built here from
the same spec (``make_source``), so both send identical bytes. Added for the
measurement only: each send's ``time.time_ns()`` is kept (a list append), and
the producers are flushed at the end so every message is counted.

Run as a process: ``python bench/seed_feeder.py --bootstrap B --topic T --rate R
--duration S --out result.json [--width 160 --height 120]``; the JSON holds the
start time, the send times, the CPU time from the start to the end of the flush.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path

from confluent_kafka import Producer

from scalelab.load.sources import make_source
from scalelab.spec.models import ExperimentSpec

NUM_THREADS = 4
START_DELAY_S = 3.0


def frames_for(width: int, height: int) -> list[bytes]:
    spec = ExperimentSpec.model_validate(
        {
            "name": "seed-feeder",
            "source": {"kind": "synthetic", "width": width, "height": height},
            "load": {"profile": "constant", "rate": 1, "duration": 1},
        }
    )
    return make_source(spec.source).encoded


def run(bootstrap: str, topic: str, rate: float, duration: float, frames: list[bytes]) -> dict:
    producers = [Producer({"bootstrap.servers": bootstrap}) for _ in range(NUM_THREADS)]
    for producer in producers:
        producer.list_topics(timeout=10)  # the seed's connected() check
    cooldown = 1 / (rate / NUM_THREADS)
    active = threading.Event()
    active.set()
    sends: list[list[int]] = [[] for _ in range(NUM_THREADS)]
    acks = [0] * NUM_THREADS
    errors = [0] * NUM_THREADS
    lock = threading.Lock()
    counter = iter(range(10**12))
    experiment_start = time.time() + START_DELAY_S

    def thread_work(nth: int) -> None:
        def ack_callback(error: object, message: object) -> None:
            if error:
                errors[nth] += 1
            else:
                acks[nth] += 1

        producer, mine = producers[nth], sends[nth]
        index = (nth * 7919) % len(frames)
        while time.time() < experiment_start:  # the seed busy-waits to sync its threads
            pass
        while active.is_set():
            started = time.time()
            frame = frames[index]
            with lock:
                next(counter)
            mine.append(time.time_ns())
            producer.produce(topic, value=frame, on_delivery=ack_callback, key=None)
            producer.poll(1)
            action_duration = time.time() - started
            time.sleep(max(cooldown - action_duration, 0))
            index = (index + 1) % len(frames)

    def handler() -> None:
        while time.time() < experiment_start:
            time.sleep(0.001)
        time.sleep(duration)
        active.clear()

    threads = [threading.Thread(target=thread_work, args=(n,)) for n in range(NUM_THREADS)]
    threads.append(threading.Thread(target=handler))
    for thread in threads:
        thread.start()
    while time.time() < experiment_start:
        time.sleep(0.001)
    cpu_start = time.process_time()
    for thread in threads:
        thread.join()
    for producer in producers:
        producer.flush(30)
    cpu = time.process_time() - cpu_start
    all_sends = sorted(ns for mine in sends for ns in mine)
    return {
        "start_ns": int(experiment_start * 1e9),
        "sent_ns": all_sends,
        "acked": sum(acks),
        "errors": sum(errors),
        "cpu_s": cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--height", type=int, default=120)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    frames = frames_for(args.width, args.height)
    result = run(args.bootstrap, args.topic, args.rate, args.duration, frames)
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
