package io.scalelab.flink;

import java.util.HashMap;
import java.util.Map;

/** One input-topic message as the job sees it: key, frame bytes, headers, where it came from. */
public class Frame {
    public byte[] key;
    public byte[] value;
    public Map<String, String> headers = new HashMap<>();
    public int partition;
    public long offset;
    /** When the source handed the message over (UTC epoch ns). */
    public long consumeNs;

    public Frame() {}
}
