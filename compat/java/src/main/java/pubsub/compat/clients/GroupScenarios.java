package pubsub.compat.clients;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.consumer.CloseOptions;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.clients.consumer.RoundRobinAssignor;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RebalanceInProgressException;
import org.apache.kafka.clients.consumer.CommitFailedException;

/**
 * Consumer groups with several live members: the three assignors through
 * joins and leaves while records flow, and static membership.
 */
final class GroupScenarios {
    private GroupScenarios() {}

    static void register(Map<String, Suite.Scenario> all) {
        all.put("group.rebalance-range", ctx -> rebalance(ctx, RangeAssignor.class.getName()));
        all.put("group.rebalance-round-robin", ctx -> rebalance(ctx, RoundRobinAssignor.class.getName()));
        all.put("group.rebalance-cooperative-sticky",
                ctx -> rebalance(ctx, CooperativeStickyAssignor.class.getName()));
        all.put("group.static-membership", GroupScenarios::staticMembership);
    }

    /** What the members of one group saw, shared between their threads. */
    static final class Ledger {
        /** Which member owns each partition now, by the rebalance callbacks. */
        final Map<TopicPartition, String> owner = new ConcurrentHashMap<>();
        /** "partition/offset" -> times consumed. */
        final Map<String, AtomicInteger> consumed = new ConcurrentHashMap<>();
        final List<String> violations = new CopyOnWriteArrayList<>();

        Set<String> owners() {
            return new TreeSet<>(owner.values());
        }
    }

    /**
     * One group member on its own thread: polls, records each record in the
     * ledger, commits after each poll and when partitions are revoked.
     */
    static final class Member implements ConsumerRebalanceListener, AutoCloseable {
        final String name;
        final KafkaConsumer<String, String> consumer;
        final Ledger ledger;
        final AtomicBoolean stop = new AtomicBoolean();
        final AtomicLong records = new AtomicLong();
        final AtomicInteger callbacks = new AtomicInteger();
        volatile int generation = -1;
        volatile Set<TopicPartition> assignment = Set.of();
        final boolean leaveOnClose;
        private final Thread thread;

        Member(Context ctx, String name, String group, String topic, Properties extra, Ledger ledger,
                boolean leaveOnClose) {
            this.name = name;
            this.ledger = ledger;
            this.leaveOnClose = leaveOnClose;
            Properties p = new Properties();
            p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "50");
            p.put(ConsumerConfig.CLIENT_ID_CONFIG, name);
            p.putAll(extra);
            this.consumer = new KafkaConsumer<>(withDefaults(ctx, group, p));
            this.thread = new Thread(() -> loop(topic), name);
            thread.start();
        }

        private static Properties withDefaults(Context ctx, String group, Properties extra) {
            Properties p = ctx.consumerProps(group);
            p.putAll(extra);
            return p;
        }

        private void loop(String topic) {
            try {
                consumer.subscribe(List.of(topic), this);
                while (!stop.get()) {
                    ConsumerRecords<String, String> got = consumer.poll(Duration.ofMillis(100));
                    for (ConsumerRecord<String, String> r : got) {
                        TopicPartition tp = new TopicPartition(r.topic(), r.partition());
                        String holder = ledger.owner.get(tp);
                        if (!name.equals(holder)) {
                            ledger.violations.add(name + " got " + tp + "@" + r.offset() + " owned by " + holder);
                        }
                        ledger.consumed.computeIfAbsent(r.partition() + "/" + r.offset(), k -> new AtomicInteger())
                                .incrementAndGet();
                        records.incrementAndGet();
                    }
                    try {
                        consumer.commitSync();
                    } catch (RebalanceInProgressException | CommitFailedException e) {
                        // The rebalance's revocation commits these positions.
                    }
                    generation = consumer.groupMetadata().generationId();
                    assignment = Set.copyOf(consumer.assignment());
                }
                consumer.close(leaveOnClose ? CloseOptions.groupMembershipOperation(
                        CloseOptions.GroupMembershipOperation.LEAVE_GROUP)
                        : CloseOptions.groupMembershipOperation(CloseOptions.GroupMembershipOperation.REMAIN_IN_GROUP));
            } catch (Throwable t) {
                ledger.violations.add(name + " failed: " + Suite.describe(t));
                consumer.close(CloseOptions.timeout(Duration.ZERO));
            }
        }

        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
            callbacks.incrementAndGet();
            if (!partitions.isEmpty()) {
                try {
                    consumer.commitSync();
                } catch (RuntimeException e) {
                    ledger.violations.add(name + ": commit on revocation of " + partitions + " failed: "
                            + Suite.describe(e));
                }
            }
            for (TopicPartition tp : partitions) {
                if (!ledger.owner.remove(tp, name)) {
                    ledger.violations.add(name + " lost " + tp + " it did not own (owner " + ledger.owner.get(tp) + ")");
                }
            }
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
            callbacks.incrementAndGet();
            for (TopicPartition tp : partitions) {
                String before = ledger.owner.putIfAbsent(tp, name);
                if (before != null) {
                    ledger.violations.add(tp + " assigned to " + name + " while " + before + " owns it");
                }
            }
        }

        @Override
        public void onPartitionsLost(Collection<TopicPartition> partitions) {
            ledger.violations.add(name + " lost " + partitions + " (session or generation expired)");
            partitions.forEach(tp -> ledger.owner.remove(tp, name));
        }

        /** Stops polling and closes (leaving the group unless static and told to stay); waits for the thread. */
        @Override
        public void close() throws InterruptedException {
            stop.set(true);
            thread.join(60_000);
        }
    }

    /** Sends records round the partitions on its own thread until stopped; counts what was acknowledged. */
    static final class Feeder implements AutoCloseable {
        final AtomicBoolean stop = new AtomicBoolean();
        final Map<Integer, Long> acknowledged = new ConcurrentHashMap<>();
        final List<String> errors = new CopyOnWriteArrayList<>();
        private final Thread thread;

        Feeder(KafkaProducer<String, String> producer, String topic, int partitions) {
            thread = new Thread(() -> {
                int i = 0;
                while (!stop.get()) {
                    for (int j = 0; j < 30; j++, i++) {
                        int p = i % partitions;
                        producer.send(new ProducerRecord<>(topic, p, null, "r" + i), (md, e) -> {
                            if (e != null) {
                                errors.add(Suite.describe(e));
                            } else {
                                acknowledged.merge(p, 1L, Long::sum);
                            }
                        });
                    }
                    producer.flush();
                    try {
                        Thread.sleep(20);
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            }, "feeder");
            thread.start();
        }

        long total() {
            return acknowledged.values().stream().mapToLong(Long::longValue).sum();
        }

        @Override
        public void close() throws InterruptedException {
            stop.set(true);
            thread.join(60_000);
        }
    }

    /**
     * Members join and leave while records flow into 6 partitions: m1
     * alone, then m2 joins, m3 joins, m1 leaves. At no time do two members
     * own a partition (by the rebalance callbacks), every member ends with a
     * share, and every record acknowledged is consumed exactly once.
     */
    static void rebalance(Context ctx, String assignor) throws Exception {
        int partitions = 6;
        String t = ctx.topic("t", partitions);
        String g = ctx.name("g");
        Ledger ledger = new Ledger();
        Properties p = new Properties();
        p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, assignor);
        Feeder feeder = ctx.own(new Feeder(ctx.producer(new Properties()), t, partitions));
        List<Member> members = new ArrayList<>();
        Member m1 = ctx.own(new Member(ctx, "m1", g, t, p, ledger, true));
        members.add(m1);
        awaitOwners(ledger, Set.of("m1"), partitions, members);
        Member m2 = ctx.own(new Member(ctx, "m2", g, t, p, ledger, true));
        members.add(m2);
        awaitOwners(ledger, Set.of("m1", "m2"), partitions, members);
        Member m3 = ctx.own(new Member(ctx, "m3", g, t, p, ledger, true));
        members.add(m3);
        awaitOwners(ledger, Set.of("m1", "m2", "m3"), partitions, members);
        long before = m1.records.get();
        m1.close();
        members.remove(m1);
        awaitOwners(ledger, Set.of("m2", "m3"), partitions, members);
        feeder.close();
        Check.equal(List.of(), feeder.errors, "produce errors");
        long total = feeder.total();
        Check.eventually(Duration.ofSeconds(60), "all " + total + " records consumed (" + ledger.consumed.size()
                + " so far)", () -> ledger.consumed.size() >= total);
        Check.that(before > 0 && m2.records.get() > 0 && m3.records.get() > 0,
                "every member consumed: m1 " + before + ", m2 " + m2.records + ", m3 " + m3.records);
        m2.close();
        m3.close();
        Check.equal(List.of(), ledger.violations, "ownership and consumption violations");
        List<String> twice = ledger.consumed.entrySet().stream().filter(e -> e.getValue().get() != 1)
                .map(e -> e.getKey() + " x" + e.getValue()).toList();
        Check.equal(List.of(), twice, "records consumed more than once");
        for (int i = 0; i < partitions; i++) {
            long n = feeder.acknowledged.getOrDefault(i, 0L);
            for (long o = 0; o < n; o++) {
                Check.that(ledger.consumed.containsKey(i + "/" + o), "record " + i + "/" + o + " was consumed");
            }
        }
        Check.equal(total, (long) ledger.consumed.size(), "records consumed (distinct)");
        ctx.observe("members-at-end", "2 of 3, each with a share");
    }

    /** Waits until exactly `names` own all partitions between them, each at least one. */
    static void awaitOwners(Ledger ledger, Set<String> names, int partitions, List<Member> members)
            throws InterruptedException {
        Check.eventually(Duration.ofSeconds(60), "partitions owned by exactly " + names + " (now " + ledger.owner
                + ", violations " + ledger.violations + ")", () -> ledger.owner.size() == partitions
                && ledger.owners().equals(names)
                && members.stream().allMatch(m -> m.assignment.size() > 0));
    }

    /**
     * Static membership: a and b (group.instance.id) share 4 partitions;
     * a's process closes without leaving and a new consumer with the same
     * instance id starts within the session timeout: it gets a's
     * partitions back, in the same generation, and b sees no rebalance.
     */
    static void staticMembership(Context ctx) throws Exception {
        int partitions = 4;
        String t = ctx.topic("t", partitions);
        String g = ctx.name("g");
        Ledger ledger = new Ledger();
        Feeder feeder = ctx.own(new Feeder(ctx.producer(new Properties()), t, partitions));
        List<Member> members = new ArrayList<>();
        Member a = ctx.own(new Member(ctx, "a", g, t, staticProps("a"), ledger, false));
        members.add(a);
        Member b = ctx.own(new Member(ctx, "b", g, t, staticProps("b"), ledger, false));
        members.add(b);
        awaitOwners(ledger, Set.of("a", "b"), partitions, members);
        Check.eventually(Duration.ofSeconds(60), "both members in one generation",
                () -> a.generation > 0 && a.generation == b.generation && a.records.get() > 0 && b.records.get() > 0);
        int generation = b.generation;
        int bCallbacks = b.callbacks.get();
        Set<TopicPartition> aHad = a.assignment;
        Set<TopicPartition> bHad = b.assignment;
        ConsumerGroupDescription described = ctx.admin.describeConsumerGroups(List.of(g)).all().get().get(g);
        Check.equal(GroupState.STABLE, described.groupState(), "group state with both members");
        ctx.observe("instance-ids", new TreeSet<>(described.members().stream()
                .map(m -> m.groupInstanceId().orElse("-")).toList()));
        a.close();
        members.remove(a);
        // The broker keeps a's membership (session.timeout.ms=30000) and its partitions.
        described = ctx.admin.describeConsumerGroups(List.of(g)).all().get().get(g);
        Check.equal(GroupState.STABLE, described.groupState(), "group state after a closed without leaving");
        Check.equal(2, described.members().size(), "members after a closed without leaving");
        Member a2 = ctx.own(new Member(ctx, "a", g, t, staticProps("a"), ledger, false));
        members.add(a2);
        Check.eventually(Duration.ofSeconds(60), "the restarted a consumes",
                () -> a2.records.get() > 0 && !a2.assignment.isEmpty());
        Check.equal(aHad, a2.assignment, "the restarted a's partitions");
        Check.equal(generation, a2.generation, "the restarted a's generation");
        Check.equal(generation, b.generation, "b's generation");
        Check.equal(bHad, b.assignment, "b's partitions");
        Check.equal(bCallbacks, b.callbacks.get(), "b's rebalance callbacks since the restart");
        described = ctx.admin.describeConsumerGroups(List.of(g)).all().get().get(g);
        Check.equal(GroupState.STABLE, described.groupState(), "group state after the restart");
        Map<String, Set<Integer>> byInstance = new TreeMap<>();
        for (MemberDescription m : described.members()) {
            byInstance.put(m.groupInstanceId().orElse("-"), new TreeSet<>(
                    m.assignment().topicPartitions().stream().map(TopicPartition::partition).toList()));
        }
        Check.equal(partitionsOf(aHad), byInstance.get("a"), "admin: a's partitions");
        ctx.observe("partitions-of-a-and-b", byInstance.values());
        feeder.close();
        long total = feeder.total();
        Check.eventually(Duration.ofSeconds(60), "all " + total + " records consumed",
                () -> ledger.consumed.size() >= total);
        a2.close();
        b.close();
        Check.equal(List.of(), ledger.violations, "ownership and consumption violations");
        List<String> twice = ledger.consumed.entrySet().stream().filter(e -> e.getValue().get() != 1)
                .map(e -> e.getKey() + " x" + e.getValue()).toList();
        Check.equal(List.of(), twice, "records consumed more than once");
        // Static members that close without leaving stay until their session
        // times out; remove them so the group does not outlive the scenario.
        ctx.admin.removeMembersFromConsumerGroup(g,
                new org.apache.kafka.clients.admin.RemoveMembersFromConsumerGroupOptions()).all().get();
    }

    private static Set<Integer> partitionsOf(Set<TopicPartition> tps) {
        return new TreeSet<>(tps.stream().map(TopicPartition::partition).toList());
    }

    private static Properties staticProps(String instance) {
        Properties p = new Properties();
        p.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, instance);
        p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "30000");
        p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, RangeAssignor.class.getName());
        return p;
    }
}
