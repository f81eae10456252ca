package pubsub.compat.clients;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Future;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * One consumer of many partitions (kafka-clients uses incremental fetch
 * sessions, KIP-227, on its own): creates TOPIC with N partitions, writes
 * one record to each, reads them all back with one consumer assigned every
 * partition; then writes a second record to every seventh partition and
 * reads those with the same consumer (its incremental fetches must carry
 * them). Prints {@code READ <first round> <second round>}, then waits for a
 * line on stdin before closing the consumer, so the caller can look at the
 * broker while the consumer's session is open.
 *
 * <p>Usage: {@code ManyPartitions BOOTSTRAP TOPIC N}. Exits 1 when a round
 * does not read exactly what was written within two minutes.
 */
public final class ManyPartitions {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[1];
        int n = Integer.parseInt(args[2]);
        Properties a = new Properties();
        a.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        // Creating thousands of partitions may take a while on a busy machine.
        a.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "600000");
        a.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "600000");
        try (Admin admin = Admin.create(a)) {
            admin.createTopics(List.of(new NewTopic(topic, n, (short) 1))).all().get();
        }
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        Properties c = new Properties();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        c.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        c.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        List<TopicPartition> all = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            all.add(new TopicPartition(topic, i));
        }
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p);
                KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c)) {
            consumer.assign(all);
            Map<Integer, String> first = new HashMap<>();
            for (int i = 0; i < n; i++) {
                first.put(i, "first-" + i);
            }
            write(producer, topic, first);
            int read1 = readExactly(consumer, first);
            Map<Integer, String> second = new HashMap<>();
            for (int i = 0; i < n; i += 7) {
                second.put(i, "second-" + i);
            }
            write(producer, topic, second);
            int read2 = readExactly(consumer, second);
            System.out.println("READ " + read1 + " " + read2);
            System.out.flush();
            if (read1 != first.size() || read2 != second.size()) {
                System.exit(1);
            }
            new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8)).readLine();
        }
    }

    private static void write(KafkaProducer<String, String> producer, String topic, Map<Integer, String> values)
            throws Exception {
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        for (Map.Entry<Integer, String> e : values.entrySet()) {
            sent.add(producer.send(new ProducerRecord<>(topic, e.getKey(), null, e.getValue())));
        }
        for (Future<RecordMetadata> f : sent) {
            f.get();
        }
    }

    /**
     * Polls until every partition in {@code expected} gave its value (a
     * partition giving another value, or one not expected, is an error);
     * returns how many were read.
     */
    private static int readExactly(KafkaConsumer<String, String> consumer, Map<Integer, String> expected) {
        Map<Integer, String> got = new HashMap<>();
        long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
        while (got.size() < expected.size() && System.nanoTime() < deadline) {
            for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                if (!r.value().equals(expected.get(r.partition())) || got.put(r.partition(), r.value()) != null) {
                    System.out.println("UNEXPECTED " + r.partition() + " " + r.offset() + " " + r.value());
                    System.exit(1);
                }
            }
        }
        return got.size();
    }
}
