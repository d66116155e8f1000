package io.scalelab.flink;

import java.util.Properties;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.kafka.clients.consumer.OffsetResetStrategy;

/**
 * The jobs' Kafka source and sink. The source reads from the group's committed offsets
 * (scalelab commits the run's start offsets before the job starts) and commits on every
 * completed checkpoint, so scalelab's lag, drain and accounting read the same group as for
 * the YOLO workers. Fetches are capped for frame-sized records (16 MB fetches at parallelism
 * 4 ran a small TaskManager out of heap).
 */
final class Kafka {
    private Kafka() {}

    static <T> KafkaSource<T> source(Args args, String topics, KafkaRecordDeserializationSchema<T> schema) {
        long fetch = args.getLong("max-fetch-bytes", 4L * 1024 * 1024);
        return KafkaSource.<T>builder()
                .setBootstrapServers(args.get("bootstrap"))
                .setTopics(topics.split(","))
                .setGroupId(args.get("group"))
                .setClientIdPrefix(args.get("group"))
                .setStartingOffsets(OffsetsInitializer.committedOffsets(OffsetResetStrategy.EARLIEST))
                .setDeserializer(schema)
                .setProperty("max.partition.fetch.bytes", Long.toString(fetch))
                .setProperty("fetch.max.bytes", Long.toString(2 * fetch))
                .setProperty("commit.offsets.on.checkpoint", "true")
                .setProperty("partition.discovery.interval.ms", "0")
                .build();
    }

    static KafkaSink<OutRecord> sink(Args args) {
        DeliveryGuarantee guarantee = delivery(args);
        Properties producer = new Properties();
        producer.setProperty("max.request.size", Long.toString(16L * 1024 * 1024));
        producer.setProperty("linger.ms", "5");
        producer.setProperty("transaction.timeout.ms", "60000");
        return KafkaSink.<OutRecord>builder()
                .setBootstrapServers(args.get("bootstrap"))
                .setKafkaProducerConfig(producer)
                .setRecordSerializer(new OutSerializer())
                .setDeliveryGuarantee(guarantee)
                .setTransactionalIdPrefix(args.get("group") + "-tx")
                .build();
    }

    static DeliveryGuarantee delivery(Args args) {
        String delivery = args.get("delivery", "at-least-once");
        switch (delivery) {
            case "at-least-once":
                return DeliveryGuarantee.AT_LEAST_ONCE;
            case "exactly-once":
                return DeliveryGuarantee.EXACTLY_ONCE;
            default:
                throw new IllegalArgumentException("--delivery must be at-least-once or exactly-once, not " + delivery);
        }
    }
}
