package pubsub.compat.clients;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * What every scenario shares: the broker's address, one AdminClient, names
 * unique to this run, clients closed when the scenario ends, and the
 * OBSERVE lines the caller compares between brokers.
 */
final class Context implements AutoCloseable {
    final String bootstrap;
    /** The {@code pubsub} binary, for the partitioner comparison; may be null. */
    final String pubsubBin;
    final Admin admin;
    private final String run = UUID.randomUUID().toString().substring(0, 8);
    private final Deque<AutoCloseable> owned = new ArrayDeque<>();
    private String scenario = "";

    Context(String bootstrap, String pubsubBin) {
        this.bootstrap = bootstrap;
        this.pubsubBin = pubsubBin;
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "60000");
        this.admin = Admin.create(p);
    }

    void begin(String name) {
        scenario = name;
    }

    /** Closes what the scenario opened through {@link #own}, newest first. */
    void end() {
        while (!owned.isEmpty()) {
            try {
                owned.pop().close();
            } catch (Exception e) {
                System.err.println("closing after " + scenario + ": " + e);
            }
        }
    }

    @Override
    public void close() {
        end();
        admin.close(Duration.ofSeconds(10));
    }

    /** Closed when the scenario ends. */
    <T extends AutoCloseable> T own(T resource) {
        owned.push(resource);
        return resource;
    }

    /** Something a client saw that must be equal on every broker. */
    void observe(String key, Object value) {
        System.out.println("OBSERVE " + scenario + " " + key + " = " + value);
    }

    /** A name unique to this run: topics and groups of one scenario. */
    String name(String suffix) {
        return scenario.replace('.', '-') + "-" + suffix + "-" + run;
    }

    /** Creates a topic and waits until every partition has a leader. */
    String topic(String suffix, int partitions, Map<String, String> configs) throws Exception {
        String t = name(suffix);
        admin.createTopics(List.of(new NewTopic(t, Optional.of(partitions), Optional.empty()).configs(configs)))
                .all().get();
        awaitLeaders(t, partitions);
        return t;
    }

    String topic(String suffix, int partitions) throws Exception {
        return topic(suffix, partitions, Map.of());
    }

    void awaitLeaders(String topic, int partitions) throws InterruptedException {
        Check.eventually(Duration.ofSeconds(30), "leaders of " + topic, () -> {
            try {
                TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
                return d.partitions().size() == partitions
                        && d.partitions().stream().allMatch(p -> p.leader() != null && !p.leader().isEmpty());
            } catch (InterruptedException | ExecutionException e) {
                return false;
            }
        });
    }

    Properties producerProps() {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "60000");
        return p;
    }

    KafkaProducer<String, String> producer(Properties extra) {
        Properties p = producerProps();
        p.putAll(extra);
        return own(new KafkaProducer<>(p));
    }

    Properties consumerProps(String group) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        if (group != null) {
            p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        }
        return p;
    }

    KafkaConsumer<String, String> consumer(String group, Properties extra) {
        Properties p = consumerProps(group);
        p.putAll(extra);
        return own(new KafkaConsumer<>(p));
    }

    KafkaConsumer<String, String> consumer(String group) {
        return consumer(group, new Properties());
    }

    /** Sends `count` records `prefix-i` (key `k-i`) to `topic` and waits for every acknowledgement. */
    List<RecordMetadata> produce(KafkaProducer<String, String> producer, String topic, Integer partition, String prefix,
            int count) throws Exception {
        List<Future<RecordMetadata>> acks = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            acks.add(producer.send(new ProducerRecord<>(topic, partition, "k-" + i, prefix + "-" + i)));
        }
        producer.flush();
        List<RecordMetadata> out = new ArrayList<>();
        for (Future<RecordMetadata> a : acks) {
            out.add(a.get());
        }
        return out;
    }

    /** Polls until `count` records came (failing after 60 s), assigned to `partitions` from the beginning. */
    List<ConsumerRecord<String, String>> readFromStart(Collection<TopicPartition> partitions, int count)
            throws InterruptedException {
        KafkaConsumer<String, String> c = consumer(null);
        c.assign(partitions);
        c.seekToBeginning(partitions);
        return poll(c, count);
    }

    /** Polls `c` until `count` records came; fails after 60 s. Polls once more to see nothing extra came. */
    static List<ConsumerRecord<String, String>> poll(KafkaConsumer<String, String> c, int count)
            throws InterruptedException {
        List<ConsumerRecord<String, String>> out = new ArrayList<>();
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (out.size() < count) {
            if (System.nanoTime() > deadline) {
                throw new Check.Failed("gave up after 60 s with " + out.size() + " of " + count + " records");
            }
            ConsumerRecords<String, String> got = c.poll(Duration.ofMillis(200));
            got.forEach(out::add);
        }
        Check.equal(count, out.size(), "records consumed");
        return out;
    }
}
