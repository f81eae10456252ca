package pubsub.compat.clients;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;

/** The consumer on its own: subscribe and assign, commits with metadata, seeking, offsets by time, pause. */
final class ConsumerScenarios {
    private ConsumerScenarios() {}

    static void register(Map<String, Suite.Scenario> all) {
        all.put("consumer.subscribe", ConsumerScenarios::subscribe);
        all.put("consumer.assign", ConsumerScenarios::assign);
        all.put("consumer.commit-with-metadata", ConsumerScenarios::commitWithMetadata);
        all.put("consumer.seek", ConsumerScenarios::seek);
        all.put("consumer.offsets-for-times", ConsumerScenarios::offsetsForTimes);
        all.put("consumer.pause-resume", ConsumerScenarios::pauseResume);
        all.put("consumer.position-after-restart", ConsumerScenarios::positionAfterRestart);
        all.put("consumer.leader-epoch-validation", ConsumerScenarios::leaderEpochValidation);
    }

    /** One subscriber in a group gets all 3 partitions and every record once. */
    static void subscribe(Context ctx) throws Exception {
        String t = ctx.topic("t", 3);
        KafkaProducer<String, String> producer = ctx.producer(new Properties());
        ctx.produce(producer, t, null, "v", 90);
        KafkaConsumer<String, String> c = ctx.consumer(ctx.name("g"));
        c.subscribe(List.of(t));
        List<ConsumerRecord<String, String>> got = Context.poll(c, 90);
        Set<String> values = new java.util.TreeSet<>();
        got.forEach(r -> values.add(r.value()));
        Check.equal(90, values.size(), "distinct values");
        Check.equal(3, c.assignment().size(), "partitions assigned");
        ctx.observe("assignment", new java.util.TreeSet<>(c.assignment().stream().map(TopicPartition::partition).toList()));
    }

    /** assign() without a group reads exactly the partitions named, from where it is told. */
    static void assign(Context ctx) throws Exception {
        String t = ctx.topic("t", 2);
        KafkaProducer<String, String> producer = ctx.producer(new Properties());
        ctx.produce(producer, t, 0, "p0", 10);
        ctx.produce(producer, t, 1, "p1", 10);
        KafkaConsumer<String, String> c = ctx.consumer(null);
        TopicPartition p1 = new TopicPartition(t, 1);
        c.assign(List.of(p1));
        c.seek(p1, 4);
        List<ConsumerRecord<String, String>> got = Context.poll(c, 6);
        for (int i = 0; i < 6; i++) {
            Check.equal("p1-" + (i + 4), got.get(i).value(), "record " + i);
            Check.equal(1, got.get(i).partition(), "partition of record " + i);
        }
        Check.equal(10L, c.position(p1), "position at the end");
        ctx.observe("position", c.position(p1));
    }

    /**
     * commitSync and commitAsync with metadata strings: the consumer's
     * committed(), a new consumer of the group, and the AdminClient all
     * read back the offset and its metadata.
     */
    static void commitWithMetadata(Context ctx) throws Exception {
        String t = ctx.topic("t", 2);
        String g = ctx.name("g");
        KafkaProducer<String, String> producer = ctx.producer(new Properties());
        ctx.produce(producer, t, 0, "v", 10);
        ctx.produce(producer, t, 1, "v", 10);
        TopicPartition p0 = new TopicPartition(t, 0);
        TopicPartition p1 = new TopicPartition(t, 1);
        KafkaConsumer<String, String> c = ctx.consumer(g);
        c.subscribe(List.of(t));
        Context.poll(c, 20);
        c.commitSync(Map.of(p0, new OffsetAndMetadata(3, "sync: three")));
        CompletableFuture<Map<TopicPartition, OffsetAndMetadata>> done = new CompletableFuture<>();
        c.commitAsync(Map.of(p1, new OffsetAndMetadata(7, "async {\"json\": 7}")), (offsets, error) -> {
            if (error != null) {
                done.completeExceptionally(error);
            } else {
                done.complete(offsets);
            }
        });
        while (!done.isDone()) {
            c.poll(Duration.ofMillis(50)); // async commit callbacks run inside poll
        }
        Check.equal(7L, done.get().get(p1).offset(), "offset in the commitAsync callback");
        Map<TopicPartition, OffsetAndMetadata> committed = c.committed(Set.of(p0, p1));
        Check.equal(3L, committed.get(p0).offset(), "committed offset of p0");
        Check.equal("sync: three", committed.get(p0).metadata(), "committed metadata of p0");
        Check.equal(7L, committed.get(p1).offset(), "committed offset of p1");
        Check.equal("async {\"json\": 7}", committed.get(p1).metadata(), "committed metadata of p1");
        c.close();
        Map<TopicPartition, OffsetAndMetadata> byAdmin =
                ctx.admin.listConsumerGroupOffsets(g).partitionsToOffsetAndMetadata().get();
        Check.equal(committed.get(p0).offset(), byAdmin.get(p0).offset(), "admin: offset of p0");
        Check.equal(committed.get(p0).metadata(), byAdmin.get(p0).metadata(), "admin: metadata of p0");
        Check.equal(committed.get(p1).metadata(), byAdmin.get(p1).metadata(), "admin: metadata of p1");
        // A new member of the group starts where the commits say.
        KafkaConsumer<String, String> again = ctx.consumer(g);
        again.subscribe(List.of(t));
        List<ConsumerRecord<String, String>> rest = Context.poll(again, 7 + 3);
        long fromP0 = rest.stream().filter(r -> r.partition() == 0).count();
        Check.equal(7L, fromP0, "records from p0 after its commit at 3");
        Check.equal(Optional.of(7L), rest.stream().filter(r -> r.partition() == 1).findFirst().map(r -> r.offset()),
                "first offset read from p1 after its commit at 7");
        ctx.observe("committed", committed.get(p0).offset() + "/" + committed.get(p0).metadata() + " "
                + committed.get(p1).offset() + "/" + committed.get(p1).metadata());
    }

    /** seek, seekToBeginning and seekToEnd move the position; records read follow it. */
    static void seek(Context ctx) throws Exception {
        String t = ctx.topic("t", 1);
        KafkaProducer<String, String> producer = ctx.producer(new Properties());
        ctx.produce(producer, t, 0, "v", 20);
        TopicPartition tp = new TopicPartition(t, 0);
        KafkaConsumer<String, String> c = ctx.consumer(null);
        c.assign(List.of(tp));
        c.seekToEnd(List.of(tp));
        Check.equal(20L, c.position(tp), "position after seekToEnd");
        c.seekToBeginning(List.of(tp));
        Check.equal(0L, c.position(tp), "position after seekToBeginning");
        c.seek(tp, 15);
        List<ConsumerRecord<String, String>> got = Context.poll(c, 5);
        Check.equal("v-15", got.get(0).value(), "first record after seek(15)");
        Check.equal(20L, c.position(tp), "position after reading to the end");
        c.seek(tp, 2);
        Check.equal("v-2", Context.poll(c, 18).get(0).value(), "first record after seek(2)");
        // Past the end: auto.offset.reset=earliest takes the consumer back to 0.
        c.seek(tp, 1000);
        Check.equal("v-0", Context.poll(c, 20).get(0).value(), "first record after seeking past the end");
        ctx.observe("end", c.position(tp));
    }

    /**
     * offsetsForTimes finds the first offset at or after a timestamp (records
     * with explicit CreateTime timestamps), null past the last one; and
     * ListOffsets by the AdminClient agrees.
     */
    static void offsetsForTimes(Context ctx) throws Exception {
        String t = ctx.topic("t", 1);
        TopicPartition tp = new TopicPartition(t, 0);
        KafkaProducer<String, String> producer = ctx.producer(new Properties());
        long base = 1_700_000_000_000L;
        for (int i = 0; i < 10; i++) {
            producer.send(new ProducerRecord<>(t, 0, base + i * 1000L, "k", "v" + i)).get();
        }
        KafkaConsumer<String, String> c = ctx.consumer(null);
        Map<Long, Long> expected = new java.util.LinkedHashMap<>();
        expected.put(base - 1, 0L);
        expected.put(base, 0L);
        expected.put(base + 1, 1L);
        expected.put(base + 5000, 5L);
        expected.put(base + 9000, 9L);
        expected.put(base + 9001, null);
        for (Map.Entry<Long, Long> e : expected.entrySet()) {
            OffsetAndTimestamp found = c.offsetsForTimes(Map.of(tp, e.getKey())).get(tp);
            Long offset = found == null ? null : found.offset();
            Check.equal(e.getValue(), offset, "offsetsForTimes(" + (e.getKey() - base) + " ms after base)");
            if (found != null) {
                Check.equal(base + offset * 1000, found.timestamp(), "timestamp found at offset " + offset);
            }
            ListOffsetsResultInfo byAdmin = ctx.admin.listOffsets(Map.of(tp, OffsetSpec.forTimestamp(e.getKey())))
                    .partitionResult(tp).get();
            Check.equal(e.getValue() == null ? -1L : e.getValue(), byAdmin.offset(),
                    "admin listOffsets(" + (e.getKey() - base) + " ms after base)");
            ctx.observe("at+" + (e.getKey() - base), offset);
        }
        Check.equal(Map.of(tp, 0L), c.beginningOffsets(List.of(tp)), "beginningOffsets");
        Check.equal(Map.of(tp, 10L), c.endOffsets(List.of(tp)), "endOffsets");
    }

    /** A paused partition returns nothing while the other flows; resumed, it continues where it was. */
    static void pauseResume(Context ctx) throws Exception {
        String t = ctx.topic("t", 2);
        KafkaProducer<String, String> producer = ctx.producer(new Properties());
        ctx.produce(producer, t, 0, "a", 10);
        ctx.produce(producer, t, 1, "b", 10);
        TopicPartition a = new TopicPartition(t, 0);
        TopicPartition b = new TopicPartition(t, 1);
        KafkaConsumer<String, String> c = ctx.consumer(null);
        c.assign(List.of(a, b));
        c.seekToBeginning(List.of(a, b));
        c.pause(List.of(a));
        Check.equal(Set.of(a), c.paused(), "paused partitions");
        List<ConsumerRecord<String, String>> got = Context.poll(c, 10);
        Check.that(got.stream().allMatch(r -> r.partition() == 1), "only the unpaused partition is read");
        for (int i = 0; i < 3; i++) {
            ConsumerRecords<String, String> none = c.poll(Duration.ofMillis(100));
            Check.equal(0, none.count(), "records while one partition is paused and the other read to its end");
        }
        Check.equal(0L, c.position(a), "position of the paused partition");
        ctx.produce(producer, t, 1, "b-more", 5);
        Check.that(Context.poll(c, 5).stream().allMatch(r -> r.partition() == 1),
                "new records of the unpaused partition only");
        c.resume(List.of(a));
        Check.equal(Set.of(), c.paused(), "paused partitions after resume");
        List<ConsumerRecord<String, String>> resumed = Context.poll(c, 10);
        Check.that(resumed.stream().allMatch(r -> r.partition() == 0), "the resumed partition's records");
        Check.equal("a-0", resumed.get(0).value(), "first record after resume");
        ctx.observe("positions", c.position(a) + "," + c.position(b));
    }

    /**
     * A group member commits part way, closes; a new consumer of the group
     * (a restarted process) takes its position from the commit and reads on
     * from there, none lost, none repeated.
     */
    static void positionAfterRestart(Context ctx) throws Exception {
        String t = ctx.topic("t", 1);
        String g = ctx.name("g");
        TopicPartition tp = new TopicPartition(t, 0);
        KafkaProducer<String, String> producer = ctx.producer(new Properties());
        ctx.produce(producer, t, 0, "v", 30);
        Properties few = new Properties();
        few.put("max.poll.records", "12");
        KafkaConsumer<String, String> first = ctx.consumer(g, few);
        first.subscribe(List.of(t));
        List<ConsumerRecord<String, String>> part = Context.poll(first, 12);
        first.commitSync();
        Check.equal(12L, first.position(tp), "position after 12 records");
        first.close();
        KafkaConsumer<String, String> second = ctx.consumer(g);
        second.assign(List.of(tp));
        Check.equal(12L, second.position(tp, Duration.ofSeconds(30)), "position of the restarted consumer");
        OffsetAndMetadata committed = second.committed(Set.of(tp)).get(tp);
        Check.equal(12L, committed.offset(), "committed offset");
        List<ConsumerRecord<String, String>> rest = Context.poll(second, 18);
        Check.equal("v-12", rest.get(0).value(), "first record after the restart");
        Check.equal(part.get(11).value(), "v-11", "last record before it");
        ctx.observe("position", 12);
    }

    /**
     * Leader epochs: records and committed offsets carry the partition's
     * leader epoch; a seek to an offset with that epoch is validated with
     * the leader (OffsetForLeaderEpoch) and reading goes on from there.
     */
    static void leaderEpochValidation(Context ctx) throws Exception {
        String t = ctx.topic("t", 1);
        String g = ctx.name("g");
        TopicPartition tp = new TopicPartition(t, 0);
        KafkaProducer<String, String> producer = ctx.producer(new Properties());
        ctx.produce(producer, t, 0, "v", 10);
        KafkaConsumer<String, String> c = ctx.consumer(g);
        c.assign(List.of(tp));
        c.seekToBeginning(List.of(tp));
        List<ConsumerRecord<String, String>> got = Context.poll(c, 10);
        Optional<Integer> epoch = got.get(0).leaderEpoch();
        Check.that(epoch.isPresent(), "records carry a leader epoch");
        ListOffsetsResultInfo latest = ctx.admin.listOffsets(Map.of(tp, OffsetSpec.latest())).partitionResult(tp).get();
        Check.equal(epoch, latest.leaderEpoch(), "leader epoch of ListOffsets(latest)");
        c.commitSync();
        OffsetAndMetadata committed = c.committed(Set.of(tp)).get(tp);
        Check.equal(epoch, committed.leaderEpoch(), "leader epoch of the committed offset");
        c.seek(tp, new OffsetAndMetadata(4, epoch, ""));
        Check.equal("v-4", Context.poll(c, 6).get(0).value(), "first record after a seek with its epoch");
        // A position whose epoch the leader knows ends at the log end: nothing to truncate.
        Map<TopicPartition, OffsetAndMetadata> commit = new HashMap<>();
        commit.put(tp, new OffsetAndMetadata(10, epoch, "end"));
        c.commitSync(commit);
        c.close();
        KafkaConsumer<String, String> again = ctx.consumer(g);
        again.assign(List.of(tp));
        Check.equal(10L, again.position(tp, Duration.ofSeconds(30)), "position restored with its epoch");
        ctx.observe("epoch", epoch.get());
        List<Integer> epochs = new ArrayList<>();
        got.forEach(r -> epochs.add(r.leaderEpoch().orElse(-1)));
        Check.that(epochs.stream().allMatch(e -> e.equals(epoch.get())), "all records in one epoch: " + epochs);
    }
}
