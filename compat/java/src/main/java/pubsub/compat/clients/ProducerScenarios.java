package pubsub.compat.clients;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.utils.Utils;

/** The producer: acks, idempotence, codecs, headers, the keyed partitioner, batch and record size limits. */
final class ProducerScenarios {
    private ProducerScenarios() {}

    static void register(Map<String, Suite.Scenario> all) {
        for (String acks : List.of("0", "1", "all")) {
            all.put("producer.acks-" + acks, ctx -> acks(ctx, acks));
        }
        all.put("producer.idempotent-by-default", ProducerScenarios::idempotentByDefault);
        for (String codec : List.of("none", "gzip", "snappy", "lz4", "zstd")) {
            all.put("producer.codec-" + codec, ctx -> codec(ctx, codec));
        }
        all.put("producer.headers", ProducerScenarios::headers);
        all.put("producer.keyed-partitioner", ProducerScenarios::keyedPartitioner);
        all.put("producer.max-message-bytes", ProducerScenarios::maxMessageBytes);
    }

    /** Records sent with `acks` arrive in order; acks=0 knows no offsets, the others know each one. */
    static void acks(Context ctx, String acks) throws Exception {
        String t = ctx.topic("t", 1);
        Properties p = new Properties();
        p.put(ProducerConfig.ACKS_CONFIG, acks);
        KafkaProducer<String, String> producer = ctx.producer(p);
        List<RecordMetadata> sent = ctx.produce(producer, t, null, "v", 100);
        for (int i = 0; i < sent.size(); i++) {
            long expected = acks.equals("0") ? -1 : i;
            Check.equal(expected, sent.get(i).offset(), "offset acknowledged for record " + i);
            Check.equal(0, sent.get(i).partition(), "partition of record " + i);
        }
        List<ConsumerRecord<String, String>> got = ctx.readFromStart(List.of(new TopicPartition(t, 0)), 100);
        for (int i = 0; i < got.size(); i++) {
            Check.equal("v-" + i, got.get(i).value(), "value at offset " + i);
            Check.equal((long) i, got.get(i).offset(), "offset of value v-" + i);
        }
        ctx.observe("acknowledged-offsets", sent.get(0).offset() + ".." + sent.get(99).offset());
    }

    /**
     * A producer left at its defaults is idempotent: it asked the broker for
     * a producer id (InitProducerId) before its first batch, and its
     * records arrive once each, in order.
     */
    static void idempotentByDefault(Context ctx) throws Exception {
        String t = ctx.topic("t", 1);
        KafkaProducer<String, String> producer = ctx.producer(new Properties());
        ctx.produce(producer, t, null, "v", 50);
        long producerId = producerId(producer);
        Check.that(producerId >= 0, "the default producer has a producer id from the broker, got " + producerId);
        List<ConsumerRecord<String, String>> got = ctx.readFromStart(List.of(new TopicPartition(t, 0)), 50);
        for (int i = 0; i < got.size(); i++) {
            Check.equal("v-" + i, got.get(i).value(), "value at offset " + i);
        }
        ctx.observe("has-producer-id", producerId >= 0);
    }

    /** The producer id an idempotent producer got; the client keeps it private, so read by reflection. */
    static long producerId(KafkaProducer<?, ?> producer) throws Exception {
        Field f = KafkaProducer.class.getDeclaredField("transactionManager");
        f.setAccessible(true);
        Object tm = f.get(producer);
        Check.that(tm != null, "the producer has a transaction manager (idempotence on)");
        Method m = tm.getClass().getDeclaredMethod("producerIdAndEpoch");
        m.setAccessible(true);
        Object idAndEpoch = m.invoke(tm);
        Field id = idAndEpoch.getClass().getDeclaredField("producerId");
        id.setAccessible(true);
        return id.getLong(idAndEpoch);
    }

    /** Records compressed with `codec` on 2 partitions read back the same, keys and values. */
    static void codec(Context ctx, String codec) throws Exception {
        String t = ctx.topic("t", 2);
        Properties p = new Properties();
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
        p.put(ProducerConfig.LINGER_MS_CONFIG, "20");
        KafkaProducer<String, String> producer = ctx.producer(p);
        int n = 400;
        String filler = "compressible text ".repeat(20);
        List<Future<RecordMetadata>> acks = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            acks.add(producer.send(new ProducerRecord<>(t, i % 2, "k-" + i, filler + i)));
        }
        producer.flush();
        for (Future<RecordMetadata> a : acks) {
            a.get();
        }
        List<ConsumerRecord<String, String>> got =
                ctx.readFromStart(List.of(new TopicPartition(t, 0), new TopicPartition(t, 1)), n);
        for (ConsumerRecord<String, String> r : got) {
            int i = Integer.parseInt(r.key().substring(2));
            Check.equal(i % 2, r.partition(), "partition of " + r.key());
            Check.equal((long) i / 2, r.offset(), "offset of " + r.key());
            Check.equal(filler + i, r.value(), "value of " + r.key());
        }
        ctx.observe("records", got.size());
    }

    /** Headers (repeated keys, binary and null values, none at all) come back byte for byte, in order. */
    static void headers(Context ctx) throws Exception {
        String t = ctx.topic("t", 1);
        KafkaProducer<String, String> producer = ctx.producer(new Properties());
        List<List<Header>> sent = List.of(
                List.of(new RecordHeader("trace", "abc".getBytes(StandardCharsets.UTF_8))),
                List.of(new RecordHeader("dup", new byte[] {1}), new RecordHeader("dup", new byte[] {2}),
                        new RecordHeader("binary", new byte[] {0, (byte) 0xff, 0x7f})),
                List.of(new RecordHeader("null-value", null), new RecordHeader("", new byte[0])),
                List.of(),
                List.of(new RecordHeader("ünïcode-ключ", "значение".getBytes(StandardCharsets.UTF_8))));
        for (int i = 0; i < sent.size(); i++) {
            producer.send(new ProducerRecord<>(t, 0, "k" + i, "v" + i, sent.get(i))).get();
        }
        List<ConsumerRecord<String, String>> got = ctx.readFromStart(List.of(new TopicPartition(t, 0)), sent.size());
        for (int i = 0; i < sent.size(); i++) {
            Header[] h = got.get(i).headers().toArray();
            Check.equal(sent.get(i).size(), h.length, "header count of record " + i);
            for (int j = 0; j < h.length; j++) {
                Header want = sent.get(i).get(j);
                Check.equal(want.key(), h[j].key(), "header " + j + " key of record " + i);
                Check.that(Arrays.equals(want.value(), h[j].value()), "header " + want.key() + " value of record "
                        + i + ": expected " + Arrays.toString(want.value()) + ", got " + Arrays.toString(h[j].value()));
            }
        }
        ctx.observe("records", got.size());
    }

    /**
     * Keyed records: the Java producer's default partitioner (murmur2 of the
     * key) picks the same partition as `pubsub produce --key-separator` and
     * as the formula itself, for 200 keys on 7 partitions.
     */
    static void keyedPartitioner(Context ctx) throws Exception {
        int partitions = 7;
        String javaTopic = ctx.topic("java", partitions);
        String cliTopic = ctx.topic("cli", partitions);
        KafkaProducer<String, String> producer = ctx.producer(new Properties());
        List<String> keys = new ArrayList<>();
        for (int i = 0; i < 200; i++) {
            keys.add(i % 3 == 0 ? "user-" + i : i % 3 == 1 ? "ключ/" + i : Integer.toHexString(i * 7919));
        }
        List<Future<RecordMetadata>> acks = new ArrayList<>();
        for (String k : keys) {
            acks.add(producer.send(new ProducerRecord<>(javaTopic, k, "v")));
        }
        producer.flush();
        List<Integer> java = new ArrayList<>();
        for (Future<RecordMetadata> a : acks) {
            java.add(a.get().partition());
        }
        for (int i = 0; i < keys.size(); i++) {
            byte[] key = keys.get(i).getBytes(StandardCharsets.UTF_8);
            Check.equal(Utils.toPositive(Utils.murmur2(key)) % partitions, java.get(i),
                    "Java producer's partition for key " + keys.get(i));
        }
        Check.that(ctx.pubsubBin != null, "PUBSUB_BIN names the pubsub binary to compare with");
        Process cli = new ProcessBuilder(ctx.pubsubBin, "produce", cliTopic, "--bootstrap", ctx.bootstrap,
                "--key-separator", ":", "--verbose").redirectError(ProcessBuilder.Redirect.INHERIT).start();
        try (OutputStream in = cli.getOutputStream()) {
            for (String k : keys) {
                in.write((k + ":v\n").getBytes(StandardCharsets.UTF_8));
            }
        }
        List<Integer> ours = new ArrayList<>();
        try (BufferedReader out = new BufferedReader(
                new InputStreamReader(cli.getInputStream(), StandardCharsets.UTF_8))) {
            for (String line; (line = out.readLine()) != null;) {
                // "partition P offset O"
                ours.add(Integer.parseInt(line.split(" ")[1]));
            }
        }
        Check.that(cli.waitFor(60, TimeUnit.SECONDS), "pubsub produce finished");
        Check.equal(0, cli.exitValue(), "pubsub produce exit status");
        Check.equal(java, ours, "partitions of the 200 keys: Java producer vs pubsub produce");
        ctx.observe("partitions", java);
    }

    /**
     * A topic with max.message.bytes=65536: a batch of 1 KiB records filling
     * batch.size=65536 is accepted (each batch as large as the limit allows),
     * one record just under the limit is accepted, one over it is refused
     * with the broker's MESSAGE_TOO_LARGE (RecordTooLargeException).
     */
    static void maxMessageBytes(Context ctx) throws Exception {
        int limit = 65536;
        String t = ctx.topic("t", 1, Map.of("max.message.bytes", Integer.toString(limit)));
        Properties p = new Properties();
        p.put(ProducerConfig.BATCH_SIZE_CONFIG, Integer.toString(limit));
        p.put(ProducerConfig.LINGER_MS_CONFIG, "1000");
        p.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, Integer.toString(4 * limit));
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "none");
        KafkaProducer<String, String> producer = ctx.producer(p);
        String kib = "x".repeat(1024);
        List<Future<RecordMetadata>> acks = new ArrayList<>();
        for (int i = 0; i < 300; i++) {
            acks.add(producer.send(new ProducerRecord<>(t, 0, null, kib)));
        }
        producer.flush();
        for (int i = 0; i < acks.size(); i++) {
            Check.equal((long) i, acks.get(i).get().offset(), "offset of 1 KiB record " + i);
        }
        // One record with its batch just under the limit (61 bytes of batch
        // header, about 10 of record overhead, 12 of log overhead).
        String justUnder = "y".repeat(limit - 200);
        Check.equal(300L, producer.send(new ProducerRecord<>(t, 0, null, justUnder)).get().offset(),
                "offset of the record just under max.message.bytes");
        String over = "z".repeat(limit + 1);
        RecordTooLargeException e = Check.fails(RecordTooLargeException.class, "a record over max.message.bytes",
                () -> producer.send(new ProducerRecord<>(t, 0, null, over)).get());
        ctx.observe("too-large", e.getClass().getSimpleName() + ": " + e.getMessage().replace(t, "T"));
        List<ConsumerRecord<String, String>> got = ctx.readFromStart(List.of(new TopicPartition(t, 0)), 301);
        Check.equal(justUnder, got.get(300).value(), "the large record read back");
        ctx.observe("records", got.size());
    }
}
