package io.scalelab.flink;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

/**
 * scalelab's `frames` job: the YOLO worker's place in the pipeline, as a Flink job.
 * Input topic (frames with headers) → per-frame work → output topic (QoS records) or
 * dead-letter topic, so the tracker, the QoS dataset and the accounting work unchanged.
 */
public final class FramesJob {
    static final String[] ARGS = {
        "bootstrap", "input", "output", "dead-letter", "group", "run-id", "checkpoint-ms",
        "delivery", "max-parallelism", "max-fetch-bytes", "decode", "burn-us", "sleep-us", "model"
    };

    private FramesJob() {}

    public static void main(String[] argv) throws Exception {
        Args args = new Args(argv, ARGS);
        FrameWork.Settings settings = settings(args);
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        Jobs.configure(env, args);
        env.fromSource(Kafka.source(args, args.get("input"), new FrameDeserializer()), WatermarkStrategy.noWatermarks(), "source")
                .uid("source")
                .flatMap(new FrameWork(settings))
                .name("frames")
                .uid("frames")
                .sinkTo(Kafka.sink(args))
                .name("sink")
                .uid("sink");
        env.execute("scalelab-frames-" + args.get("run-id"));
    }

    static FrameWork.Settings settings(Args args) {
        FrameWork.Settings settings = new FrameWork.Settings();
        settings.runId = args.get("run-id");
        settings.outputTopic = args.get("output");
        settings.deadLetterTopic = args.get("dead-letter");
        settings.model = args.get("model", "flink-frames");
        String decode = args.get("decode", "true");
        if (!decode.equals("true") && !decode.equals("false")) {
            throw new IllegalArgumentException("--decode must be true or false, not " + decode);
        }
        settings.decode = decode.equals("true");
        settings.burnMicros = args.getLong("burn-us", 0);
        settings.sleepMicros = args.getLong("sleep-us", 0);
        return settings;
    }
}
