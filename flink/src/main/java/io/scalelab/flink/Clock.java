package io.scalelab.flink;

import java.time.Instant;

/** UTC epoch nanoseconds, the unit of every timestamp in scalelab's messages. */
final class Clock {
    private Clock() {}

    static long nowNs() {
        Instant now = Instant.now();
        return now.getEpochSecond() * 1_000_000_000L + now.getNano();
    }
}
