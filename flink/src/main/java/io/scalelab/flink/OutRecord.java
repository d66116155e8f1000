package io.scalelab.flink;

import java.util.LinkedHashMap;
import java.util.Map;

/** A record for the sink: the topic is chosen per record (output or dead-letter topic). */
public class OutRecord {
    public String topic;
    public byte[] key;
    public byte[] value;
    public Map<String, String> headers = new LinkedHashMap<>();

    public OutRecord() {}

    public OutRecord(String topic, byte[] key, byte[] value) {
        this.topic = topic;
        this.key = key;
        this.value = value;
    }
}
