package io.scalelab.flink;

import java.nio.charset.StandardCharsets;
import java.util.Map;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.kafka.clients.producer.ProducerRecord;

/** OutRecord → a Kafka record on the topic it names, with its headers. */
public class OutSerializer implements KafkaRecordSerializationSchema<OutRecord> {
    @Override
    public ProducerRecord<byte[], byte[]> serialize(OutRecord record, KafkaSinkContext context, Long timestamp) {
        ProducerRecord<byte[], byte[]> out = new ProducerRecord<>(record.topic, null, null, record.key, record.value);
        for (Map.Entry<String, String> header : record.headers.entrySet()) {
            out.headers().add(header.getKey(), header.getValue().getBytes(StandardCharsets.US_ASCII));
        }
        return out;
    }
}
