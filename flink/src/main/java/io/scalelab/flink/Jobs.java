package io.scalelab.flink;

import org.apache.flink.core.execution.CheckpointingMode;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

/** What every scalelab job sets the same way: checkpoints and maximum parallelism. */
final class Jobs {
    private Jobs() {}

    static void configure(StreamExecutionEnvironment env, Args args) {
        long interval = args.getLong("checkpoint-ms", 2000);
        if (interval <= 0) {
            throw new IllegalArgumentException("--checkpoint-ms must be positive (offsets are committed on checkpoints)");
        }
        Kafka.delivery(args); // a bad value fails at submission, not at the first record
        CheckpointingMode mode = args.get("delivery", "at-least-once").equals("exactly-once")
                ? CheckpointingMode.EXACTLY_ONCE
                : CheckpointingMode.AT_LEAST_ONCE;
        env.enableCheckpointing(interval, mode);
        long maxParallelism = args.getLong("max-parallelism", 0);
        if (maxParallelism > 0) {
            env.setMaxParallelism((int) maxParallelism);
        }
    }
}
