package io.scalelab.flink;

import java.util.HashMap;
import java.util.Map;

/** One sensor record (Theodolite's load shape): a keyed reading with scalelab's headers. */
public class Sensor {
    public byte[] key; // the run-scoped message id
    public byte[] value; // "<sensor>;<reading>"
    public String sensor = "";
    public double reading;
    public Map<String, String> headers = new HashMap<>();
    public String topic = "";
    public int partition;
    public long offset;
    public long consumeNs;
    /** Event time: the intended send time, in ms. */
    public long eventMs;

    public Sensor() {}
}
