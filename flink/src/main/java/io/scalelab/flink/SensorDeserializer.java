package io.scalelab.flink;

import java.nio.charset.StandardCharsets;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.util.Collector;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.header.Header;

/** Input record → Sensor; parsing the reading is left to the job (bad ones are dead-lettered). */
public class SensorDeserializer implements KafkaRecordDeserializationSchema<Sensor> {
    @Override
    public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<Sensor> out) {
        Sensor sensor = new Sensor();
        sensor.key = record.key() == null ? new byte[0] : record.key();
        sensor.value = record.value() == null ? new byte[0] : record.value();
        for (Header header : record.headers()) {
            byte[] value = header.value();
            sensor.headers.put(header.key(), value == null ? "" : new String(value, StandardCharsets.US_ASCII));
        }
        sensor.topic = record.topic();
        sensor.partition = record.partition();
        sensor.offset = record.offset();
        sensor.consumeNs = Clock.nowNs();
        try {
            sensor.eventMs = Long.parseLong(sensor.headers.getOrDefault("intended_ns", "")) / 1_000_000;
        } catch (NumberFormatException e) {
            sensor.eventMs = record.timestamp();
        }
        out.collect(sensor);
    }

    @Override
    public TypeInformation<Sensor> getProducedType() {
        return TypeInformation.of(Sensor.class);
    }
}
