package io.scalelab.flink;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichCoGroupFunction;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.ProcessFunction;
import org.apache.flink.streaming.api.windowing.assigners.TumblingEventTimeWindows;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;

/**
 * Scalehub's experiment job: two sensor topics joined per sensor in tumbling event-time
 * windows (1 s by default), with a CPU burn (naive Fibonacci) per joined pair; the windows'
 * contents are keyed state, checkpointed and redistributed on a rescale.
 *
 * For scalelab's accounting every input record leaves one output record (its id, the
 * number of partners it found in its window as `detections`), so produced = processed +
 * dead-lettered + still queued holds as for frames; its latency includes the window wait.
 * A record whose value is not `<sensor>;<number>` goes to the dead-letter topic. A record
 * that arrives after its window fired (event time behind the watermark) is one the window
 * would drop silently: it leaves an output record with `late: 1` and no partners instead.
 */
public final class JoinJob {
    static final String[] ARGS = {
        "bootstrap", "input", "output", "dead-letter", "group", "run-id", "checkpoint-ms",
        "delivery", "max-parallelism", "max-fetch-bytes", "window-ms", "lateness-ms", "fibonacci"
    };
    static final OutputTag<OutRecord> DEAD = new OutputTag<>("dead-letter") {};
    static final OutputTag<OutRecord> LATE = new OutputTag<>("late") {};

    private JoinJob() {}

    public static void main(String[] argv) throws Exception {
        Args args = new Args(argv, ARGS);
        String[] topics = args.get("input").split(",");
        if (topics.length != 2) {
            throw new IllegalArgumentException("--input must name two topics, comma-separated, not " + args.get("input"));
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        Jobs.configure(env, args);
        Duration lateness = Duration.ofMillis(args.getLong("lateness-ms", 500));
        long windowMs = args.getLong("window-ms", 1000);
        SingleOutputStreamOperator<Sensor> left = parsed(env, args, topics[0], "left", lateness, windowMs);
        SingleOutputStreamOperator<Sensor> right = parsed(env, args, topics[1], "right", lateness, windowMs);
        DataStream<OutRecord> joined = left.coGroup(right)
                .where(s -> s.sensor)
                .equalTo(s -> s.sensor)
                .window(TumblingEventTimeWindows.of(Duration.ofMillis(windowMs)))
                .apply(new Join(args.get("run-id"), args.get("output"), (int) args.getLong("fibonacci", 20)));
        joined.union(left.getSideOutput(DEAD), right.getSideOutput(DEAD), left.getSideOutput(LATE), right.getSideOutput(LATE))
                .sinkTo(Kafka.sink(args))
                .name("sink")
                .uid("sink");
        env.execute("scalelab-join-" + args.get("run-id"));
    }

    private static SingleOutputStreamOperator<Sensor> parsed(
            StreamExecutionEnvironment env, Args args, String topic, String name, Duration lateness, long windowMs) {
        WatermarkStrategy<Sensor> watermarks = WatermarkStrategy.<Sensor>forBoundedOutOfOrderness(lateness)
                .withTimestampAssigner((s, previous) -> s.eventMs);
        // No idleness: every partition of both topics carries records while the load runs,
        // and an idle input's end-of-input watermark must still close the last windows.
        return env.fromSource(Kafka.source(args, topic, new SensorDeserializer()), watermarks, "source-" + name)
                .uid("source-" + name)
                .process(new Parse(args.get("run-id"), args.get("output"), args.get("dead-letter"), windowMs))
                .name("parse-" + name)
                .uid("parse-" + name);
    }

    /** `<sensor>;<reading>` → the record's key and reading; anything else is dead-lettered. */
    static final class Parse extends ProcessFunction<Sensor, Sensor> {
        private final String runId;
        private final String outputTopic;
        private final String deadLetterTopic;
        private final long windowMs;
        private transient String worker;

        Parse(String runId, String outputTopic, String deadLetterTopic, long windowMs) {
            this.runId = runId;
            this.outputTopic = outputTopic;
            this.deadLetterTopic = deadLetterTopic;
            this.windowMs = windowMs;
        }

        @Override
        public void open(OpenContext context) {
            worker = "flink-parse-" + getRuntimeContext().getTaskInfo().getIndexOfThisSubtask();
        }

        @Override
        public void processElement(Sensor sensor, Context context, Collector<Sensor> out) {
            String text = new String(sensor.value, StandardCharsets.UTF_8);
            int split = text.indexOf(';');
            try {
                if (split <= 0) {
                    throw new NumberFormatException("no ';'");
                }
                sensor.sensor = text.substring(0, split);
                sensor.reading = Double.parseDouble(text.substring(split + 1));
                long windowEnd = sensor.eventMs - Math.floorMod(sensor.eventMs, windowMs) + windowMs - 1;
                if (windowEnd <= context.timerService().currentWatermark()) {
                    context.output(LATE, record(sensor, 0, Clock.nowNs(), 0.0, worker, runId, outputTopic, true));
                } else {
                    out.collect(sensor);
                }
            } catch (NumberFormatException e) {
                OutRecord dead = new OutRecord(deadLetterTopic, sensor.key, sensor.value);
                dead.headers.putAll(sensor.headers);
                dead.headers.put("reason", "not a sensor record <sensor>;<number> (" + sensor.value.length + " bytes)");
                context.output(DEAD, dead);
            }
        }
    }

    /** One window of one sensor: burn per joined pair, one output record per input record. */
    static final class Join extends RichCoGroupFunction<Sensor, Sensor, OutRecord> {
        private final String runId;
        private final String outputTopic;
        private final int fibonacci;
        private transient String worker;

        Join(String runId, String outputTopic, int fibonacci) {
            this.runId = runId;
            this.outputTopic = outputTopic;
            this.fibonacci = fibonacci;
        }

        @Override
        public void open(OpenContext context) {
            worker = "flink-join-" + getRuntimeContext().getTaskInfo().getIndexOfThisSubtask();
        }

        @Override
        public void coGroup(Iterable<Sensor> lefts, Iterable<Sensor> rights, Collector<OutRecord> out) {
            long startNs = Clock.nowNs();
            java.util.List<Sensor> a = new java.util.ArrayList<>();
            java.util.List<Sensor> b = new java.util.ArrayList<>();
            lefts.forEach(a::add);
            rights.forEach(b::add);
            long burnStart = System.nanoTime();
            for (int i = 0; i < a.size() * b.size(); i++) {
                Burn.sink += Burn.fibonacci(fibonacci);
            }
            double burnS = (System.nanoTime() - burnStart) / 1e9;
            for (Sensor s : a) {
                out.collect(record(s, b.size(), startNs, burnS, worker, runId, outputTopic, false));
            }
            for (Sensor s : b) {
                out.collect(record(s, a.size(), startNs, burnS, worker, runId, outputTopic, false));
            }
        }

        private static long parse(String text, long fallback) {
            try {
                return Long.parseLong(text == null ? "" : text);
            } catch (NumberFormatException e) {
                return fallback;
            }
        }
    }
    /** The output record of one input record (the worker contract, plus `topic` and `late`). */
    static OutRecord record(
            Sensor s, int partners, long startNs, double burnS, String worker, String runId, String outputTopic, boolean late) {
            long sentNs = Join.parse(s.headers.get("sent_ns"), 0);
            String json = new Json()
                    .put("id", new String(s.key, StandardCharsets.UTF_8))
                    .put("run_id", s.headers.getOrDefault("run_id", runId))
                    .put("seq", Join.parse(s.headers.get("seq"), -1))
                    .put("source", s.headers.getOrDefault("source", ""))
                    .put("worker", worker)
                    .put("model", "flink-join")
                    .put("batch_size", partners)
                    .put("partition", s.partition)
                    .put("offset", s.offset)
                    .put("intended_ns", Join.parse(s.headers.get("intended_ns"), 0))
                    .put("sent_ns", sentNs)
                    .put("consume_ns", s.consumeNs)
                    .put("done_ns", Clock.nowNs())
                    .put("queue_s", Math.max(0, startNs - sentNs) / 1e9)
                    .put("decode_s", 0.0)
                    .put("preprocess_s", 0.0)
                    .put("inference_s", burnS)
                    .put("postprocess_s", 0.0)
                    .put("detections", partners)
                    .put("topic", s.topic)
                    .put("late", late ? 1 : 0)
                    .done();
            return new OutRecord(outputTopic, s.key, json.getBytes(StandardCharsets.UTF_8));
        }

}
