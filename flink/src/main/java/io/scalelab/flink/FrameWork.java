package io.scalelab.flink;

import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import javax.imageio.ImageIO;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichFlatMapFunction;
import org.apache.flink.util.Collector;

/**
 * The per-frame work of the `frames` job: decode (JPEG or scalelab's raw matrix), then an
 * optional CPU burn and an optional sleep standing for a model-server call. A frame that does
 * not decode goes to the dead-letter topic with its reason, as the YOLO worker does; the job
 * never fails on bad input. The output record follows the worker's (ARCHITECTURE.md): the
 * decode time is `decode_s`, the burn and sleep together are `inference_s`.
 */
public class FrameWork extends RichFlatMapFunction<Frame, OutRecord> {
    static final byte[] RAW_MAGIC = "SLRAW1".getBytes(StandardCharsets.US_ASCII);

    private final Settings settings;
    private transient String worker;

    /** What the job does per frame and where results go. */
    public static class Settings implements java.io.Serializable {
        public String runId;
        public String outputTopic;
        public String deadLetterTopic;
        public String model;
        public boolean decode;
        public long burnMicros;
        public long sleepMicros;
    }

    public FrameWork(Settings settings) {
        this.settings = settings;
    }

    @Override
    public void open(OpenContext context) {
        ImageIO.setUseCache(false); // the disk cache made decoding I/O-bound
        worker = "flink-" + getRuntimeContext().getTaskInfo().getIndexOfThisSubtask();
    }

    @Override
    public void flatMap(Frame frame, Collector<OutRecord> out) throws Exception {
        long startNs = Clock.nowNs();
        long decodeStart = System.nanoTime();
        if (settings.decode) {
            String reason = decodeFailure(frame.value);
            if (reason != null) {
                out.collect(deadLetter(frame, reason));
                return;
            }
        }
        long decodeNs = System.nanoTime() - decodeStart;
        long workStart = System.nanoTime();
        Burn.micros(settings.burnMicros);
        if (settings.sleepMicros > 0) {
            Thread.sleep(settings.sleepMicros / 1000, (int) (settings.sleepMicros % 1000) * 1000);
        }
        long workNs = System.nanoTime() - workStart;
        out.collect(output(frame, startNs, decodeNs, workNs));
    }

    private OutRecord output(Frame frame, long startNs, long decodeNs, long workNs) {
        long sentNs = headerLong(frame, "sent_ns", 0);
        String json = new Json()
                .put("id", new String(frame.key, StandardCharsets.UTF_8))
                .put("run_id", frame.headers.getOrDefault("run_id", settings.runId))
                .put("seq", headerLong(frame, "seq", -1))
                .put("source", frame.headers.getOrDefault("source", ""))
                .put("worker", worker)
                .put("model", settings.model)
                .put("batch_size", 1)
                .put("partition", frame.partition)
                .put("offset", frame.offset)
                .put("intended_ns", headerLong(frame, "intended_ns", 0))
                .put("sent_ns", sentNs)
                .put("consume_ns", frame.consumeNs)
                .put("done_ns", Clock.nowNs())
                .put("queue_s", Math.max(0, startNs - sentNs) / 1e9)
                .put("decode_s", decodeNs / 1e9)
                .put("preprocess_s", 0.0)
                .put("inference_s", workNs / 1e9)
                .put("postprocess_s", 0.0)
                .put("detections", 0)
                .done();
        return new OutRecord(settings.outputTopic, frame.key, json.getBytes(StandardCharsets.UTF_8));
    }

    private OutRecord deadLetter(Frame frame, String reason) {
        OutRecord record = new OutRecord(settings.deadLetterTopic, frame.key, frame.value);
        record.headers.putAll(frame.headers);
        record.headers.put("reason", reason);
        return record;
    }

    private static long headerLong(Frame frame, String name, long fallback) {
        try {
            return Long.parseLong(frame.headers.getOrDefault(name, ""));
        } catch (NumberFormatException e) {
            return fallback;
        }
    }

    /** Null when the bytes decode to an image; otherwise why not (the dead-letter reason). */
    static String decodeFailure(byte[] data) {
        if (data.length == 0) {
            return "empty message";
        }
        if (startsWith(data, RAW_MAGIC)) {
            return rawFailure(data);
        }
        try {
            BufferedImage image = ImageIO.read(new ByteArrayInputStream(data));
            if (image != null) {
                return null;
            }
        } catch (IOException | RuntimeException e) {
            // falls through: not decodable
        }
        return "not a decodable image (" + data.length + " bytes)";
    }

    private static String rawFailure(byte[] data) {
        int header = RAW_MAGIC.length + 5;
        if (data.length < header) {
            return "raw frame shorter than its header";
        }
        ByteBuffer buf = ByteBuffer.wrap(data, RAW_MAGIC.length, 5).order(ByteOrder.LITTLE_ENDIAN);
        int height = Short.toUnsignedInt(buf.getShort());
        int width = Short.toUnsignedInt(buf.getShort());
        int channels = Byte.toUnsignedInt(buf.get());
        int pixels = data.length - header;
        if (pixels != height * width * channels || (channels != 1 && channels != 3)) {
            return "raw frame of " + pixels + " bytes does not match " + height + "x" + width + "x" + channels;
        }
        return null;
    }

    private static boolean startsWith(byte[] data, byte[] prefix) {
        return data.length >= prefix.length && Arrays.equals(data, 0, prefix.length, prefix, 0, prefix.length);
    }
}
