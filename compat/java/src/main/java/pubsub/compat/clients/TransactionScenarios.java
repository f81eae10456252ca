package pubsub.compat.clients;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ProducerFencedException;

/**
 * Transactions with the Java client's transactional producer
 * ({@code transactional.id} set): commit, abort, an open transaction that
 * read_committed does not see until it ends, a zombie producer fenced by a
 * new instance of the same transactional id, and consume-transform-produce
 * with {@code sendOffsetsToTransaction}. The client uses transaction version
 * 2 (KIP-890) where the broker finalizes the {@code transaction.version}
 * feature at 2, which Kafka 4.x and pubsub do; one scenario checks it did.
 * Each scenario checks what a
 * read_committed and a read_uncommitted consumer read; the OBSERVE lines
 * (offsets, values, exception classes) must be the same on every broker.
 */
final class TransactionScenarios {
    private TransactionScenarios() {}

    static void register(Map<String, Suite.Scenario> all) {
        all.put("txn.commit", TransactionScenarios::commit);
        all.put("txn.abort", TransactionScenarios::abort);
        all.put("txn.open-invisible-to-read-committed", TransactionScenarios::openInvisible);
        all.put("txn.zombie-fenced", TransactionScenarios::zombieFenced);
        all.put("txn.consume-transform-produce", TransactionScenarios::consumeTransformProduce);
        all.put("txn.version-2-epoch-per-transaction", TransactionScenarios::epochPerTransaction);
    }

    static KafkaProducer<String, String> transactional(Context ctx, String txnId) {
        Properties p = new Properties();
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        KafkaProducer<String, String> producer = ctx.producer(p);
        producer.initTransactions();
        return producer;
    }

    static KafkaConsumer<String, String> reader(Context ctx, IsolationLevel level, List<TopicPartition> partitions) {
        Properties p = new Properties();
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, level.toString());
        KafkaConsumer<String, String> c = ctx.consumer(null, p);
        c.assign(partitions);
        c.seekToBeginning(partitions);
        return c;
    }

    /**
     * Everything `level` reads of `partitions` up to their end (read_committed:
     * the last stable offset) as "partition/offset:value", in offset order
     * per partition; fails after 60 s.
     */
    static List<String> readAll(Context ctx, IsolationLevel level, List<TopicPartition> partitions)
            throws InterruptedException {
        KafkaConsumer<String, String> c = reader(ctx, level, partitions);
        Map<TopicPartition, Long> ends = c.endOffsets(partitions);
        Map<TopicPartition, List<String>> got = new TreeMap<>((a, b) -> Integer.compare(a.partition(), b.partition()));
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (partitions.stream().anyMatch(tp -> c.position(tp) < ends.get(tp))) {
            if (System.nanoTime() > deadline) {
                throw new Check.Failed("gave up reading " + partitions + " (" + level + ") to " + ends);
            }
            for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                got.computeIfAbsent(new TopicPartition(r.topic(), r.partition()), k -> new ArrayList<>())
                        .add(r.partition() + "/" + r.offset() + ":" + r.value());
            }
        }
        c.close();
        List<String> out = new ArrayList<>();
        got.values().forEach(out::addAll);
        return out;
    }

    static List<TopicPartition> partitions(String topic, int count) {
        List<TopicPartition> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            out.add(new TopicPartition(topic, i));
        }
        return out;
    }

    static void send(KafkaProducer<String, String> p, String topic, int partitions, String prefix, int perPartition)
            throws Exception {
        List<java.util.concurrent.Future<?>> acks = new ArrayList<>();
        for (int part = 0; part < partitions; part++) {
            for (int i = 0; i < perPartition; i++) {
                acks.add(p.send(new ProducerRecord<>(topic, part, "k", prefix + "-" + part + "-" + i)));
            }
        }
        p.flush();
        for (java.util.concurrent.Future<?> a : acks) {
            a.get();
        }
    }

    /** Offsets where `level` reads each partition's end. */
    static Map<Integer, Long> ends(Context ctx, IsolationLevel level, List<TopicPartition> partitions) {
        KafkaConsumer<String, String> c = reader(ctx, level, partitions);
        Map<Integer, Long> out = new TreeMap<>();
        c.endOffsets(partitions).forEach((tp, o) -> out.put(tp.partition(), o));
        // Closed here, not at the scenario's end: settle() asks every 50 ms.
        c.close();
        return out;
    }

    /**
     * Waits until read_committed ends each partition at `expected`: Kafka
     * answers EndTxn before it has written the markers (pubsub after).
     */
    static void settle(Context ctx, List<TopicPartition> partitions, Map<Integer, Long> expected)
            throws InterruptedException {
        List<Map<Integer, Long>> seen = new ArrayList<>(List.of(Map.of()));
        try {
            Check.eventually(Duration.ofSeconds(60), "last stable offsets " + expected, () -> {
                seen.set(0, ends(ctx, IsolationLevel.READ_COMMITTED, partitions));
                return seen.get(0).equals(expected);
            });
        } catch (Check.Failed e) {
            throw new Check.Failed(e.getMessage() + " (last seen " + seen.get(0) + ", log end "
                    + ends(ctx, IsolationLevel.READ_UNCOMMITTED, partitions) + ")");
        }
    }

    /** The group's committed offset of `tp` (none: -1). */
    static long groupOffset(Context ctx, String group, TopicPartition tp) {
        try {
            OffsetAndMetadata o =
                    ctx.admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get().get(tp);
            return o == null ? -1 : o.offset();
        } catch (Exception e) {
            throw new Check.Failed("listing the offsets of " + group + ": " + Suite.describe(e));
        }
    }

    /** A committed transaction over two partitions: both read it whole; each partition ends after its marker. */
    static void commit(Context ctx) throws Exception {
        String t = ctx.topic("t", 2);
        List<TopicPartition> tps = partitions(t, 2);
        KafkaProducer<String, String> p = transactional(ctx, ctx.name("tx"));
        p.beginTransaction();
        send(p, t, 2, "c", 3);
        p.commitTransaction();
        settle(ctx, tps, Map.of(0, 4L, 1, 4L));
        List<String> committed = readAll(ctx, IsolationLevel.READ_COMMITTED, tps);
        Check.equal(List.of("0/0:c-0-0", "0/1:c-0-1", "0/2:c-0-2", "1/0:c-1-0", "1/1:c-1-1", "1/2:c-1-2"), committed,
                "read_committed");
        Check.equal(committed, readAll(ctx, IsolationLevel.READ_UNCOMMITTED, tps), "read_uncommitted");
        ctx.observe("read-committed", committed);
        ctx.observe("end-offsets", ends(ctx, IsolationLevel.READ_UNCOMMITTED, tps));
    }

    /**
     * Commit, abort, commit on one partition: read_committed skips the
     * aborted records, read_uncommitted returns them; each transaction
     * leaves one marker offset.
     */
    static void abort(Context ctx) throws Exception {
        String t = ctx.topic("t", 1);
        List<TopicPartition> tps = partitions(t, 1);
        KafkaProducer<String, String> p = transactional(ctx, ctx.name("tx"));
        p.beginTransaction();
        send(p, t, 1, "first", 2);
        p.commitTransaction();
        p.beginTransaction();
        send(p, t, 1, "aborted", 2);
        p.abortTransaction();
        p.beginTransaction();
        send(p, t, 1, "third", 1);
        p.commitTransaction();
        settle(ctx, tps, Map.of(0, 8L));
        List<String> committed = readAll(ctx, IsolationLevel.READ_COMMITTED, tps);
        Check.equal(List.of("0/0:first-0-0", "0/1:first-0-1", "0/6:third-0-0"), committed, "read_committed");
        List<String> uncommitted = readAll(ctx, IsolationLevel.READ_UNCOMMITTED, tps);
        Check.equal(List.of("0/0:first-0-0", "0/1:first-0-1", "0/3:aborted-0-0", "0/4:aborted-0-1",
                "0/6:third-0-0"), uncommitted, "read_uncommitted");
        Check.equal(Map.of(0, 8L), ends(ctx, IsolationLevel.READ_UNCOMMITTED, tps), "end offset");
        ctx.observe("read-committed", committed);
        ctx.observe("read-uncommitted", uncommitted);
    }

    /**
     * An open transaction holds the last stable offset at its first record:
     * read_committed reads nothing of it, nor of a plain record written
     * after it, until it commits; read_uncommitted reads both at once.
     */
    static void openInvisible(Context ctx) throws Exception {
        String t = ctx.topic("t", 1);
        List<TopicPartition> tps = partitions(t, 1);
        KafkaProducer<String, String> p = transactional(ctx, ctx.name("tx"));
        p.beginTransaction();
        send(p, t, 1, "open", 2);
        KafkaProducer<String, String> plain = ctx.producer(new Properties());
        ctx.produce(plain, t, 0, "plain", 1);
        Check.equal(List.of("0/0:open-0-0", "0/1:open-0-1", "0/2:plain-0"),
                readAll(ctx, IsolationLevel.READ_UNCOMMITTED, tps), "read_uncommitted while open");
        Check.equal(Map.of(0, 0L), ends(ctx, IsolationLevel.READ_COMMITTED, tps), "last stable offset while open");
        Check.equal(Map.of(0, 3L), ends(ctx, IsolationLevel.READ_UNCOMMITTED, tps), "high watermark while open");
        KafkaConsumer<String, String> waiting = reader(ctx, IsolationLevel.READ_COMMITTED, tps);
        for (int i = 0; i < 5; i++) {
            ConsumerRecords<String, String> got = waiting.poll(Duration.ofMillis(200));
            Check.equal(0, got.count(), "records read_committed returned while the transaction is open");
        }
        Check.equal(0L, waiting.position(tps.get(0)), "read_committed position while open");
        p.commitTransaction();
        List<String> seen = new ArrayList<>();
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (seen.size() < 3 && System.nanoTime() < deadline) {
            for (ConsumerRecord<String, String> r : waiting.poll(Duration.ofMillis(200))) {
                seen.add(r.offset() + ":" + r.value());
            }
        }
        Check.equal(List.of("0:open-0-0", "1:open-0-1", "2:plain-0"), seen, "read_committed after the commit");
        settle(ctx, tps, Map.of(0, 4L));
        ctx.observe("after-commit", seen);
    }

    /**
     * A second producer with the same transactional id fences the first: the
     * zombie's commit fails with ProducerFencedException, its open
     * transaction is aborted, and the new instance commits.
     */
    static void zombieFenced(Context ctx) throws Exception {
        String t = ctx.topic("t", 2);
        List<TopicPartition> tps = partitions(t, 2);
        String txnId = ctx.name("tx");
        KafkaProducer<String, String> zombie = transactional(ctx, txnId);
        zombie.beginTransaction();
        send(zombie, t, 2, "zombie", 1);
        KafkaProducer<String, String> fresh = transactional(ctx, txnId);
        ProducerFencedException fenced =
                Check.fails(ProducerFencedException.class, "the zombie's commit", zombie::commitTransaction);
        fresh.beginTransaction();
        send(fresh, t, 2, "fresh", 1);
        fresh.commitTransaction();
        settle(ctx, tps, Map.of(0, 4L, 1, 4L));
        List<String> committed = readAll(ctx, IsolationLevel.READ_COMMITTED, tps);
        Check.equal(List.of("0/2:fresh-0-0", "1/2:fresh-1-0"), committed, "read_committed");
        Check.equal(List.of("0/0:zombie-0-0", "0/2:fresh-0-0", "1/0:zombie-1-0", "1/2:fresh-1-0"),
                readAll(ctx, IsolationLevel.READ_UNCOMMITTED, tps), "read_uncommitted");
        ctx.observe("zombie-commit", fenced.getClass().getSimpleName());
        ctx.observe("read-committed", committed);
    }

    /**
     * Consume-transform-produce: a read_committed consumer of a group reads
     * the input, a transactional producer writes each record upper-cased and
     * commits the consumer's offsets in the same transaction
     * (sendOffsetsToTransaction). A first transaction commits half the input,
     * a second over the rest aborts: the group's offset stays at the half,
     * a new consumer resumes there and a third transaction commits the
     * rest. The output holds each input record once.
     */
    static void consumeTransformProduce(Context ctx) throws Exception {
        String in = ctx.topic("in", 1);
        String out = ctx.topic("out", 1);
        String group = ctx.name("g");
        KafkaProducer<String, String> plain = ctx.producer(new Properties());
        ctx.produce(plain, in, 0, "v", 10);
        KafkaProducer<String, String> p = transactional(ctx, ctx.name("tx"));
        Properties rc = new Properties();
        rc.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        rc.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "5");
        TopicPartition input = new TopicPartition(in, 0);

        KafkaConsumer<String, String> first = ctx.consumer(group, rc);
        first.subscribe(List.of(in));
        transform(p, first, out, 5, true);
        transform(p, first, out, 5, false);
        first.close();
        // Kafka applies a transaction's offsets when it writes the marker, after answering EndTxn.
        settle(ctx, partitions(out, 1), Map.of(0, 12L));
        List<String> aborted = new ArrayList<>();
        for (int i = 5; i < 10; i++) {
            aborted.add("0/" + (i + 1) + ":V-" + i);
        }
        Check.equal(aborted, readAll(ctx, IsolationLevel.READ_UNCOMMITTED, partitions(out, 1)).subList(5, 10),
                "the aborted output, read_uncommitted");
        Check.eventually(Duration.ofSeconds(60), "the group's offset at 5", () -> groupOffset(ctx, group, input) == 5);

        KafkaConsumer<String, String> second = ctx.consumer(group, rc);
        second.subscribe(List.of(in));
        transform(p, second, out, 5, true);
        settle(ctx, partitions(out, 1), Map.of(0, 18L));
        Check.eventually(Duration.ofSeconds(60), "the group's offset at 10",
                () -> groupOffset(ctx, group, input) == 10);

        List<String> output = new ArrayList<>();
        for (String r : readAll(ctx, IsolationLevel.READ_COMMITTED, partitions(out, 1))) {
            output.add(r.substring(r.indexOf(':') + 1));
        }
        List<String> expected = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            expected.add("V-" + i);
        }
        Check.equal(expected, output, "the output, read_committed");
        ctx.observe("output", output);
        ctx.observe("group-offset", groupOffset(ctx, group, input));
    }

    /**
     * Transaction version 2 in use: the coordinator bumps the producer epoch
     * at every commit or abort (EndTxn 5), which a version 1 client never
     * asks for, so DescribeTransactions shows the epoch after
     * initTransactions and one more after each of three transactions (two
     * commits and an abort, each writing to a partition without
     * AddPartitionsToTxn: Produce 12 adds it). The records committed are
     * read whole.
     */
    static void epochPerTransaction(Context ctx) throws Exception {
        String t = ctx.topic("t", 1);
        List<TopicPartition> tps = partitions(t, 1);
        String txnId = ctx.name("tx");
        KafkaProducer<String, String> p = transactional(ctx, txnId);
        List<Integer> epochs = new ArrayList<>(List.of(coordinatorEpoch(ctx, txnId)));
        String[] outcomes = {"commit", "abort", "commit"};
        for (int i = 0; i < outcomes.length; i++) {
            p.beginTransaction();
            send(p, t, 1, outcomes[i] + i, 1);
            if (outcomes[i].equals("commit")) {
                p.commitTransaction();
            } else {
                p.abortTransaction();
            }
            epochs.add(coordinatorEpoch(ctx, txnId));
        }
        for (int i = 1; i < epochs.size(); i++) {
            Check.equal(epochs.get(i - 1) + 1, epochs.get(i),
                    "the producer epoch after transaction " + i + " (epochs " + epochs + ")");
        }
        settle(ctx, tps, Map.of(0, 6L));
        List<String> committed = readAll(ctx, IsolationLevel.READ_COMMITTED, tps);
        Check.equal(List.of("0/0:commit0-0-0", "0/4:commit2-0-0"), committed, "read_committed");
        ctx.observe("epochs", epochs);
        ctx.observe("read-committed", committed);
    }

    /** The producer epoch the transaction coordinator holds for `txnId` (DescribeTransactions). */
    static int coordinatorEpoch(Context ctx, String txnId) throws Exception {
        return ctx.admin.describeTransactions(List.of(txnId)).description(txnId).get().producerEpoch();
    }

    /** One transaction: `count` records polled from `c`, written upper-cased to `out` with c's offsets. */
    static void transform(KafkaProducer<String, String> p, KafkaConsumer<String, String> c, String out, int count,
            boolean commit) throws Exception {
        p.beginTransaction();
        Map<TopicPartition, OffsetAndMetadata> next = new HashMap<>();
        List<ConsumerRecord<String, String>> got = new ArrayList<>();
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (got.size() < count) {
            if (System.nanoTime() > deadline) {
                throw new Check.Failed("gave up polling the input with " + got.size() + " of " + count);
            }
            for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                got.add(r);
            }
        }
        Check.equal(count, got.size(), "records polled for one transaction (max.poll.records)");
        for (ConsumerRecord<String, String> r : got) {
            p.send(new ProducerRecord<>(out, 0, r.key(), r.value().toUpperCase()));
            next.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
        }
        // Stored before the transaction ends: abortTransaction drops the
        // batches the producer has not sent yet (TransactionAbortedException),
        // so without this how many aborted records reach the log (and where
        // the output ends) depends on the client's timing.
        p.flush();
        p.sendOffsetsToTransaction(next, c.groupMetadata());
        if (commit) {
            p.commitTransaction();
        } else {
            p.abortTransaction();
        }
    }
}
