package io.scalelab.flink;

import java.nio.charset.StandardCharsets;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.util.Collector;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.header.Header;

/** Input-topic record → Frame, keeping the headers (run id, seq, intended and sent times). */
public class FrameDeserializer implements KafkaRecordDeserializationSchema<Frame> {
    @Override
    public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<Frame> out) {
        Frame frame = new Frame();
        frame.key = record.key() == null ? new byte[0] : record.key();
        frame.value = record.value() == null ? new byte[0] : record.value();
        for (Header header : record.headers()) {
            byte[] value = header.value();
            frame.headers.put(header.key(), value == null ? "" : new String(value, StandardCharsets.US_ASCII));
        }
        frame.partition = record.partition();
        frame.offset = record.offset();
        frame.consumeNs = Clock.nowNs();
        out.collect(frame);
    }

    @Override
    public TypeInformation<Frame> getProducedType() {
        return TypeInformation.of(Frame.class);
    }
}
