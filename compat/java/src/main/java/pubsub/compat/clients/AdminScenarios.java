package pubsub.compat.clients;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.ListTopicsOptions;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.ReplicaInfo;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.GroupSubscribedToTopicException;
import org.apache.kafka.common.errors.InvalidPartitionsException;
import org.apache.kafka.common.errors.OffsetOutOfRangeException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;

/** The AdminClient: topics, partitions, configs, consumer groups and their offsets, records, log dirs, producers. */
final class AdminScenarios {
    private AdminScenarios() {}

    static void register(Map<String, Suite.Scenario> all) {
        all.put("admin.create-topics", AdminScenarios::createTopics);
        all.put("admin.describe-topics", AdminScenarios::describeTopics);
        all.put("admin.describe-cluster", AdminScenarios::describeCluster);
        all.put("admin.list-topics", AdminScenarios::listTopics);
        all.put("admin.delete-topics", AdminScenarios::deleteTopics);
        all.put("admin.create-partitions", AdminScenarios::createPartitions);
        all.put("admin.describe-configs", AdminScenarios::describeConfigs);
        all.put("admin.incremental-alter-configs", AdminScenarios::incrementalAlterConfigs);
        all.put("admin.list-consumer-groups", AdminScenarios::listConsumerGroups);
        all.put("admin.describe-consumer-groups", AdminScenarios::describeConsumerGroups);
        all.put("admin.list-consumer-group-offsets", AdminScenarios::listConsumerGroupOffsets);
        all.put("admin.alter-consumer-group-offsets", AdminScenarios::alterConsumerGroupOffsets);
        all.put("admin.delete-consumer-group-offsets", AdminScenarios::deleteConsumerGroupOffsets);
        all.put("admin.delete-records", AdminScenarios::deleteRecords);
        all.put("admin.list-offsets", AdminScenarios::listOffsets);
        all.put("admin.describe-log-dirs", AdminScenarios::describeLogDirs);
        all.put("admin.describe-producers", AdminScenarios::describeProducers);
    }

    /**
     * createTopics with configs, and with -1 partitions and replication
     * (the broker's defaults: num.partitions=1, one replica); the answer
     * carries partitions, replication and configs; creating again fails
     * with TopicExistsException.
     */
    static void createTopics(Context ctx) throws Exception {
        String withConfigs = ctx.name("configs");
        String defaults = ctx.name("defaults");
        CreateTopicsResult r = ctx.admin.createTopics(List.of(
                new NewTopic(withConfigs, 3, (short) 1).configs(
                        Map.of("retention.ms", "3600000", "cleanup.policy", "compact", "max.message.bytes", "200000")),
                new NewTopic(defaults, Optional.empty(), Optional.empty())));
        r.all().get();
        Check.equal(3, r.numPartitions(withConfigs).get(), "partitions of the topic with configs");
        Check.equal(1, r.replicationFactor(withConfigs).get(), "replication of the topic with configs");
        Check.equal(1, r.numPartitions(defaults).get(), "partitions of the topic with -1 partitions");
        Check.equal(1, r.replicationFactor(defaults).get(), "replication of the topic with -1 replication");
        Check.that(!r.topicId(withConfigs).get().toString().isEmpty(), "a topic id");
        Config created = r.config(withConfigs).get();
        Check.equal("3600000", created.get("retention.ms").value(), "retention.ms in the answer");
        Check.equal("compact", created.get("cleanup.policy").value(), "cleanup.policy in the answer");
        ctx.observe("answer-configs", configSummary(created, Set.of("retention.ms", "cleanup.policy",
                "max.message.bytes", "segment.bytes")));
        ctx.awaitLeaders(withConfigs, 3);
        ctx.awaitLeaders(defaults, 1);
        Config described = ctx.admin.describeConfigs(List.of(new ConfigResource(ConfigResource.Type.TOPIC, withConfigs)))
                .all().get().values().iterator().next();
        Check.equal("200000", described.get("max.message.bytes").value(), "max.message.bytes described");
        Check.equal(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, described.get("max.message.bytes").source(),
                "source of max.message.bytes");
        TopicExistsException e = Check.fails(TopicExistsException.class, "creating an existing topic",
                () -> ctx.admin.createTopics(List.of(new NewTopic(defaults, 1, (short) 1))).all().get());
        ctx.observe("exists", e.getMessage().replace(defaults, "T"));
    }

    /** describeTopics: partitions, leaders, replicas, ISR, internal flag, topic id; unknown topics fail. */
    static void describeTopics(Context ctx) throws Exception {
        String t = ctx.topic("t", 3);
        TopicDescription d = ctx.admin.describeTopics(List.of(t)).allTopicNames().get().get(t);
        Check.equal(t, d.name(), "name");
        Check.equal(false, d.isInternal(), "internal");
        Check.equal(3, d.partitions().size(), "partitions");
        Node node = ctx.admin.describeCluster().nodes().get().iterator().next();
        for (TopicPartitionInfo p : d.partitions()) {
            Check.equal(node.id(), p.leader().id(), "leader of partition " + p.partition());
            Check.equal(List.of(node.id()), p.replicas().stream().map(Node::id).toList(), "replicas");
            Check.equal(List.of(node.id()), p.isr().stream().map(Node::id).toList(), "isr");
        }
        Check.equal(List.of(0, 1, 2), d.partitions().stream().map(TopicPartitionInfo::partition).toList(),
                "partition numbers in order");
        var byId = ctx.admin.describeTopics(org.apache.kafka.common.TopicCollection.ofTopicIds(List.of(d.topicId())))
                .allTopicIds().get();
        Check.equal(t, byId.get(d.topicId()).name(), "name of the topic described by id");
        Check.fails(UnknownTopicOrPartitionException.class, "describing an unknown topic",
                () -> ctx.admin.describeTopics(List.of(ctx.name("missing"))).allTopicNames().get());
        ctx.observe("partitions", d.partitions().size() + " leader node " + d.partitions().get(0).leader().id());
    }

    /** describeCluster: one node (id 0 on both brokers), a cluster id, the controller. */
    static void describeCluster(Context ctx) throws Exception {
        DescribeClusterResult c = ctx.admin.describeCluster();
        Collection<Node> nodes = c.nodes().get();
        Check.equal(1, nodes.size(), "nodes");
        Node node = nodes.iterator().next();
        Check.that(ctx.bootstrap.equals(node.host() + ":" + node.port()), "the node's address " + node.host() + ":"
                + node.port() + " is the bootstrap " + ctx.bootstrap);
        String id = c.clusterId().get();
        Check.that(id != null && !id.isEmpty(), "a cluster id");
        Node controller = c.controller().get();
        Check.that(controller != null && !controller.isEmpty(), "a controller");
        ctx.observe("node", node.id());
    }

    /** listTopics names what was created, not what was deleted; internal topics only when asked. */
    static void listTopics(Context ctx) throws Exception {
        String a = ctx.topic("a", 1);
        String b = ctx.topic("b", 2);
        Set<String> names = ctx.admin.listTopics().names().get();
        Check.that(names.contains(a) && names.contains(b), "listed: " + names);
        Check.that(names.stream().noneMatch(n -> n.startsWith("__")), "no internal topic without listInternal: " + names);
        var listings = ctx.admin.listTopics().namesToListings().get();
        Check.equal(false, listings.get(a).isInternal(), "internal flag of " + a);
        Check.equal(listings.get(a).topicId(), ctx.admin.describeTopics(List.of(a)).allTopicNames().get().get(a).topicId(),
                "topic id listed and described");
        ctx.admin.deleteTopics(List.of(b)).all().get();
        Check.eventually(Duration.ofSeconds(30), "the deleted topic unlisted", () -> {
            try {
                return !ctx.admin.listTopics().names().get().contains(b);
            } catch (Exception e) {
                return false;
            }
        });
        Set<String> internal = ctx.admin.listTopics(new ListTopicsOptions().listInternal(true)).names().get();
        Check.that(internal.containsAll(Set.of(a)), "listInternal still lists " + a);
        ctx.observe("listed", "2, then 1");
    }

    /** deleteTopics: gone from metadata, producing to it fails; deleting an unknown topic fails. */
    static void deleteTopics(Context ctx) throws Exception {
        String t = ctx.topic("t", 2);
        KafkaProducer<String, String> producer = ctx.producer(new Properties());
        ctx.produce(producer, t, 0, "v", 5);
        ctx.admin.deleteTopics(List.of(t)).all().get();
        Check.eventually(Duration.ofSeconds(30), "the topic gone", () -> {
            try {
                ctx.admin.describeTopics(List.of(t)).allTopicNames().get();
                return false;
            } catch (Exception e) {
                return e.getCause() instanceof UnknownTopicOrPartitionException;
            }
        });
        UnknownTopicOrPartitionException e = Check.fails(UnknownTopicOrPartitionException.class,
                "deleting an unknown topic", () -> ctx.admin.deleteTopics(List.of(t)).all().get());
        ctx.observe("delete-unknown", e.getMessage().replace(t, "T"));
        // Created again, it starts empty.
        ctx.admin.createTopics(List.of(new NewTopic(t, 1, (short) 1))).all().get();
        ctx.awaitLeaders(t, 1);
        TopicPartition tp = new TopicPartition(t, 0);
        Check.equal(0L, ctx.admin.listOffsets(Map.of(tp, OffsetSpec.latest())).partitionResult(tp).get().offset(),
                "end offset of the topic created again");
    }

    /** createPartitions grows a topic; records reach the new partitions; shrinking or equal counts fail. */
    static void createPartitions(Context ctx) throws Exception {
        String t = ctx.topic("t", 2);
        ctx.admin.createPartitions(Map.of(t, NewPartitions.increaseTo(5))).all().get();
        ctx.awaitLeaders(t, 5);
        KafkaProducer<String, String> producer = ctx.producer(new Properties());
        ctx.produce(producer, t, 4, "new", 3);
        List<ConsumerRecord<String, String>> got = ctx.readFromStart(List.of(new TopicPartition(t, 4)), 3);
        Check.equal("new-0", got.get(0).value(), "first record of the new partition");
        InvalidPartitionsException same = Check.fails(InvalidPartitionsException.class, "increaseTo(5) again",
                () -> ctx.admin.createPartitions(Map.of(t, NewPartitions.increaseTo(5))).all().get());
        InvalidPartitionsException fewer = Check.fails(InvalidPartitionsException.class, "increaseTo(3)",
                () -> ctx.admin.createPartitions(Map.of(t, NewPartitions.increaseTo(3))).all().get());
        Check.fails(UnknownTopicOrPartitionException.class, "growing an unknown topic",
                () -> ctx.admin.createPartitions(Map.of(ctx.name("missing"), NewPartitions.increaseTo(3))).all().get());
        ctx.observe("same", same.getMessage());
        ctx.observe("fewer", fewer.getMessage().replace(t, "T"));
    }

    /** describeConfigs of a topic: values, sources, read-only and sensitive flags of the common settings. */
    static void describeConfigs(Context ctx) throws Exception {
        String t = ctx.topic("t", 1, Map.of("retention.ms", "7200000", "segment.bytes", "1048576"));
        Config c = ctx.admin.describeConfigs(List.of(new ConfigResource(ConfigResource.Type.TOPIC, t)))
                .all().get().values().iterator().next();
        Check.equal("7200000", c.get("retention.ms").value(), "retention.ms");
        Check.equal(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, c.get("retention.ms").source(), "retention.ms source");
        Check.equal("1048576", c.get("segment.bytes").value(), "segment.bytes");
        Check.equal("delete", c.get("cleanup.policy").value(), "cleanup.policy default");
        Check.equal(ConfigEntry.ConfigSource.DEFAULT_CONFIG, c.get("cleanup.policy").source(), "cleanup.policy source");
        Set<String> common = Set.of("retention.ms", "segment.bytes", "cleanup.policy", "max.message.bytes",
                "retention.bytes", "message.timestamp.type", "compression.type", "segment.ms",
                "delete.retention.ms");
        ctx.observe("configs", configSummary(c, common));
        Check.fails(UnknownTopicOrPartitionException.class, "configs of an unknown topic",
                () -> ctx.admin.describeConfigs(List.of(new ConfigResource(ConfigResource.Type.TOPIC, ctx.name("missing"))))
                        .all().get());
    }

    /** name=value (source, read-only?, sensitive?) for the names given, sorted. */
    static String configSummary(Config c, Set<String> names) {
        Map<String, String> out = new TreeMap<>();
        for (String n : names) {
            ConfigEntry e = c.get(n);
            out.put(n, e == null ? "absent" : e.value() + " (" + e.source() + (e.isReadOnly() ? ", read-only" : "")
                    + (e.isSensitive() ? ", sensitive" : "") + ")");
        }
        return out.toString();
    }

    /** incrementalAlterConfigs SET, DELETE, APPEND and SUBTRACT on a topic; an unknown name fails. */
    static void incrementalAlterConfigs(Context ctx) throws Exception {
        String t = ctx.topic("t", 1, Map.of("retention.ms", "7200000"));
        ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, t);
        ctx.admin.incrementalAlterConfigs(Map.of(r, List.of(
                new AlterConfigOp(new ConfigEntry("max.message.bytes", "300000"), AlterConfigOp.OpType.SET),
                new AlterConfigOp(new ConfigEntry("retention.ms", null), AlterConfigOp.OpType.DELETE),
                new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"), AlterConfigOp.OpType.APPEND))))
                .all().get();
        Config c = ctx.admin.describeConfigs(List.of(r)).all().get().get(r);
        Check.equal("300000", c.get("max.message.bytes").value(), "max.message.bytes after SET");
        Check.equal(ConfigEntry.ConfigSource.DEFAULT_CONFIG, c.get("retention.ms").source(),
                "retention.ms source after DELETE");
        // Kafka keeps a list in the order written (delete,compact); pubsub
        // writes cleanup.policy as compact,delete (a known difference).
        Check.equal(Set.of("delete", "compact"), Set.of(c.get("cleanup.policy").value().split(",")),
                "cleanup.policy after APPEND");
        ctx.observe("after-set-delete", configSummary(c, Set.of("max.message.bytes", "retention.ms")));
        ctx.observe("cleanup.policy-after-append", new TreeSet<>(List.of(c.get("cleanup.policy").value().split(","))));
        ctx.admin.incrementalAlterConfigs(Map.of(r, List.of(
                new AlterConfigOp(new ConfigEntry("cleanup.policy", "delete"), AlterConfigOp.OpType.SUBTRACT))))
                .all().get();
        c = ctx.admin.describeConfigs(List.of(r)).all().get().get(r);
        Check.equal("compact", c.get("cleanup.policy").value(), "cleanup.policy after SUBTRACT");
        Exception e = Check.fails(org.apache.kafka.common.errors.InvalidConfigurationException.class,
                "setting an unknown config", () -> ctx.admin.incrementalAlterConfigs(Map.of(r, List.of(
                        new AlterConfigOp(new ConfigEntry("no.such.config", "1"), AlterConfigOp.OpType.SET))))
                        .all().get());
        ctx.observe("unknown", e.getMessage());
        // validateOnly changes nothing.
        ctx.admin.incrementalAlterConfigs(Map.of(r, List.of(
                new AlterConfigOp(new ConfigEntry("max.message.bytes", "1000"), AlterConfigOp.OpType.SET))),
                new org.apache.kafka.clients.admin.AlterConfigsOptions().validateOnly(true)).all().get();
        c = ctx.admin.describeConfigs(List.of(r)).all().get().get(r);
        Check.equal("300000", c.get("max.message.bytes").value(), "max.message.bytes after a validateOnly SET");
    }

    /** A group with one stable member, with its topic read and committed. */
    static String groupWithMember(Context ctx, String t, int records) throws Exception {
        String g = ctx.name("g");
        KafkaProducer<String, String> producer = ctx.producer(new Properties());
        ctx.produce(producer, t, null, "v", records);
        KafkaConsumer<String, String> c = ctx.consumer(g);
        c.subscribe(List.of(t));
        Context.poll(c, records);
        c.commitSync();
        return g;
    }

    /** listConsumerGroups: an active group and an empty one (committed offsets, no member), with states. */
    @SuppressWarnings("removal")
    static void listConsumerGroups(Context ctx) throws Exception {
        String t = ctx.topic("t", 2);
        String active = groupWithMember(ctx, t, 10);
        String empty = ctx.name("empty");
        ctx.admin.alterConsumerGroupOffsets(empty, Map.of(new TopicPartition(t, 0), new OffsetAndMetadata(1))).all().get();
        Collection<ConsumerGroupListing> listed = ctx.admin.listConsumerGroups().all().get();
        Map<String, ConsumerGroupListing> byId = listed.stream()
                .collect(Collectors.toMap(ConsumerGroupListing::groupId, l -> l));
        Check.that(byId.containsKey(active), active + " listed: " + byId.keySet());
        Check.that(byId.containsKey(empty), empty + " listed: " + byId.keySet());
        Check.equal(Optional.of(GroupState.STABLE), byId.get(active).groupState(), "state of the active group");
        Check.equal(Optional.of(GroupState.EMPTY), byId.get(empty).groupState(), "state of the empty group");
        Check.equal(false, byId.get(active).isSimpleConsumerGroup(), "active group is not simple");
        ctx.observe("states", byId.get(active).groupState() + " " + byId.get(empty).groupState());
    }

    /** describeConsumerGroups: state, assignor, members with client ids and assignments, coordinator. */
    static void describeConsumerGroups(Context ctx) throws Exception {
        String t = ctx.topic("t", 3);
        String g = groupWithMember(ctx, t, 6);
        ConsumerGroupDescription d = ctx.admin.describeConsumerGroups(List.of(g)).all().get().get(g);
        Check.equal(g, d.groupId(), "group id");
        Check.equal(GroupState.STABLE, d.groupState(), "state");
        Check.equal("range", d.partitionAssignor(), "assignor");
        Check.equal(1, d.members().size(), "members");
        var m = d.members().iterator().next();
        Check.equal(Set.of(new TopicPartition(t, 0), new TopicPartition(t, 1), new TopicPartition(t, 2)),
                m.assignment().topicPartitions(), "the member's assignment");
        Check.that(m.consumerId().startsWith(m.clientId() + "-"), "member id " + m.consumerId() + " starts with client id "
                + m.clientId());
        Check.equal(Optional.empty(), m.groupInstanceId(), "instance id");
        Check.equal(0, d.coordinator().id(), "coordinator");
        Exception e = Check.fails(org.apache.kafka.common.errors.GroupIdNotFoundException.class,
                "describing an unknown group",
                () -> ctx.admin.describeConsumerGroups(List.of(ctx.name("missing"))).all().get());
        ctx.observe("group", d.groupState() + " " + d.partitionAssignor() + " " + d.members().size() + " member(s)");
        ctx.observe("unknown-group", e.getMessage().replace(ctx.name("missing"), "G"));
    }

    /** listConsumerGroupOffsets: all partitions, or the ones asked for; metadata read back. */
    static void listConsumerGroupOffsets(Context ctx) throws Exception {
        String t = ctx.topic("t", 2);
        String g = groupWithMember(ctx, t, 8);
        Map<TopicPartition, OffsetAndMetadata> all = ctx.admin.listConsumerGroupOffsets(g)
                .partitionsToOffsetAndMetadata().get();
        Check.equal(2, all.size(), "partitions with offsets");
        long sum = all.values().stream().mapToLong(OffsetAndMetadata::offset).sum();
        Check.equal(8L, sum, "committed offsets add up to the records read");
        var spec = new org.apache.kafka.clients.admin.ListConsumerGroupOffsetsSpec()
                .topicPartitions(List.of(new TopicPartition(t, 1)));
        Map<TopicPartition, OffsetAndMetadata> one = ctx.admin.listConsumerGroupOffsets(Map.of(g, spec))
                .partitionsToOffsetAndMetadata(g).get();
        Check.equal(Set.of(new TopicPartition(t, 1)), one.keySet(), "partitions asked for");
        Map<TopicPartition, OffsetAndMetadata> none = ctx.admin.listConsumerGroupOffsets(ctx.name("missing"))
                .partitionsToOffsetAndMetadata().get();
        Check.equal(Map.of(), none, "offsets of an unknown group");
        ctx.observe("sum", sum);
    }

    /** alterConsumerGroupOffsets on an empty group; refused while a member is active. */
    static void alterConsumerGroupOffsets(Context ctx) throws Exception {
        String t = ctx.topic("t", 2);
        String g = ctx.name("g");
        TopicPartition p0 = new TopicPartition(t, 0);
        TopicPartition p1 = new TopicPartition(t, 1);
        ctx.admin.alterConsumerGroupOffsets(g, Map.of(p0, new OffsetAndMetadata(5, "five"), p1,
                new OffsetAndMetadata(0))).all().get();
        Map<TopicPartition, OffsetAndMetadata> read = ctx.admin.listConsumerGroupOffsets(g)
                .partitionsToOffsetAndMetadata().get();
        Check.equal(5L, read.get(p0).offset(), "offset of p0");
        Check.equal("five", read.get(p0).metadata(), "metadata of p0");
        Check.equal(0L, read.get(p1).offset(), "offset of p1");
        String active = groupWithMember(ctx, t, 4);
        Exception e = Check.fails(org.apache.kafka.common.errors.UnknownMemberIdException.class,
                "altering the offsets of a group with an active member", () -> ctx.admin.alterConsumerGroupOffsets(
                        active, Map.of(p0, new OffsetAndMetadata(0))).all().get());
        ctx.observe("active-group", e.getClass().getSimpleName() + ": " + e.getMessage().replace(t, "T"));
    }

    /** deleteConsumerGroupOffsets: removed for an empty group; refused for a subscribed topic of an active group. */
    static void deleteConsumerGroupOffsets(Context ctx) throws Exception {
        String t = ctx.topic("t", 2);
        String g = ctx.name("g");
        TopicPartition p0 = new TopicPartition(t, 0);
        TopicPartition p1 = new TopicPartition(t, 1);
        ctx.admin.alterConsumerGroupOffsets(g, Map.of(p0, new OffsetAndMetadata(3), p1, new OffsetAndMetadata(4)))
                .all().get();
        ctx.admin.deleteConsumerGroupOffsets(g, Set.of(p0)).all().get();
        Map<TopicPartition, OffsetAndMetadata> left = ctx.admin.listConsumerGroupOffsets(g)
                .partitionsToOffsetAndMetadata().get();
        Check.equal(Set.of(p1), left.keySet(), "partitions with offsets after deleting p0's");
        String active = groupWithMember(ctx, t, 4);
        GroupSubscribedToTopicException e = Check.fails(GroupSubscribedToTopicException.class,
                "deleting offsets of a topic an active member subscribes to",
                () -> ctx.admin.deleteConsumerGroupOffsets(active, Set.of(p0)).all().get());
        ctx.observe("subscribed", e.getMessage());
    }

    /** deleteRecords moves the log start offset; reads start there; beyond the end fails. */
    static void deleteRecords(Context ctx) throws Exception {
        String t = ctx.topic("t", 1);
        TopicPartition tp = new TopicPartition(t, 0);
        KafkaProducer<String, String> producer = ctx.producer(new Properties());
        ctx.produce(producer, t, 0, "v", 10);
        long low = ctx.admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(4))).lowWatermarks().get(tp).get()
                .lowWatermark();
        Check.equal(4L, low, "low watermark");
        Check.equal(4L, ctx.admin.listOffsets(Map.of(tp, OffsetSpec.earliest())).partitionResult(tp).get().offset(),
                "earliest offset after deleting");
        List<ConsumerRecord<String, String>> got = ctx.readFromStart(List.of(tp), 6);
        Check.equal("v-4", got.get(0).value(), "first record after deleting");
        Check.equal(10L, ctx.admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(-1))).lowWatermarks().get(tp)
                .get().lowWatermark(), "low watermark after deleting to the high watermark (-1)");
        Check.fails(OffsetOutOfRangeException.class, "deleting beyond the end",
                () -> ctx.admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(11))).all().get());
        ctx.observe("low-watermarks", "4, 10");
    }

    /** listOffsets: earliest, latest, by timestamp, max timestamp, on records with CreateTime timestamps. */
    static void listOffsets(Context ctx) throws Exception {
        String t = ctx.topic("t", 2);
        TopicPartition p0 = new TopicPartition(t, 0);
        TopicPartition p1 = new TopicPartition(t, 1);
        KafkaProducer<String, String> producer = ctx.producer(new Properties());
        long base = 1_700_000_000_000L;
        long[] stamps = {base, base + 30, base + 10, base + 20};
        for (long s : stamps) {
            producer.send(new org.apache.kafka.clients.producer.ProducerRecord<>(t, 0, s, null, "v")).get();
        }
        Map<String, OffsetSpec> specs = new TreeMap<>(Map.of("earliest", OffsetSpec.earliest(), "latest",
                OffsetSpec.latest(), "time+15", OffsetSpec.forTimestamp(base + 15), "max-timestamp",
                OffsetSpec.maxTimestamp(), "time+31", OffsetSpec.forTimestamp(base + 31)));
        Map<String, String> seen = new TreeMap<>();
        for (Map.Entry<String, OffsetSpec> e : specs.entrySet()) {
            Map<TopicPartition, ListOffsetsResultInfo> r = ctx.admin.listOffsets(Map.of(p0, e.getValue(), p1,
                    e.getValue())).all().get();
            seen.put(e.getKey(), "p0 " + r.get(p0).offset() + "@" + (r.get(p0).timestamp() == -1 ? -1
                    : r.get(p0).timestamp() - base) + ", p1 " + r.get(p1).offset());
        }
        Check.equal("p0 0@-1, p1 0", seen.get("earliest"), "earliest");
        Check.equal("p0 4@-1, p1 0", seen.get("latest"), "latest");
        Check.equal("p0 1@30, p1 -1", seen.get("time+15"), "first offset at or after +15 ms");
        Check.equal("p0 1@30, p1 -1", seen.get("max-timestamp"), "max timestamp");
        Check.equal("p0 -1@-1, p1 -1", seen.get("time+31"), "past the last timestamp");
        ctx.observe("answers", seen);
    }

    /** describeLogDirs: one log dir on node 0 holding each partition with its size. */
    static void describeLogDirs(Context ctx) throws Exception {
        String t = ctx.topic("t", 2);
        KafkaProducer<String, String> producer = ctx.producer(new Properties());
        ctx.produce(producer, t, 0, "v", 20);
        // Kafka creates a partition's log after CreateTopics has answered
        // (the broker applies the metadata change on its own time): an
        // empty partition can be missing from the first description.
        Check.eventually(Duration.ofSeconds(30), "both partitions in the log dir", () -> {
            try {
                return ctx.admin.describeLogDirs(List.of(0)).allDescriptions().get().values().stream()
                        .flatMap(dirs -> dirs.values().stream())
                        .filter(d -> d.replicaInfos().containsKey(new TopicPartition(t, 0))
                                && d.replicaInfos().containsKey(new TopicPartition(t, 1)))
                        .findAny().isPresent();
            } catch (Exception e) {
                return false;
            }
        });
        Map<Integer, Map<String, LogDirDescription>> all = ctx.admin.describeLogDirs(List.of(0)).allDescriptions().get();
        Check.equal(Set.of(0), all.keySet(), "nodes described");
        Map<String, LogDirDescription> dirs = all.get(0);
        Check.equal(1, dirs.size(), "log dirs");
        LogDirDescription dir = dirs.values().iterator().next();
        Check.equal(null, dir.error(), "log dir error");
        ReplicaInfo p0 = dir.replicaInfos().get(new TopicPartition(t, 0));
        ReplicaInfo p1 = dir.replicaInfos().get(new TopicPartition(t, 1));
        Check.that(p0 != null && p1 != null, "both partitions in the log dir");
        Check.that(p0.size() > 20 * 3, "partition 0 holds its records: " + p0.size() + " bytes");
        Check.equal(0L, p1.size(), "size of the empty partition");
        Check.equal(false, p0.isFuture(), "future replica");
        Check.that(dir.totalBytes().isPresent() && dir.usableBytes().isPresent(), "total and usable bytes");
        ctx.observe("replicas", "p0 non-empty, p1 " + p1.size() + ", lag " + p0.offsetLag());
    }

    /** describeProducers: the idempotent producer that wrote a partition, with its epoch and last sequence. */
    static void describeProducers(Context ctx) throws Exception {
        String t = ctx.topic("t", 1);
        TopicPartition tp = new TopicPartition(t, 0);
        KafkaProducer<String, String> producer = ctx.producer(new Properties());
        ctx.produce(producer, t, 0, "v", 10);
        long id = ProducerScenarios.producerId(producer);
        List<ProducerState> active = ctx.admin.describeProducers(List.of(tp)).partitionResult(tp).get()
                .activeProducers();
        Check.equal(1, active.size(), "active producers");
        ProducerState s = active.get(0);
        Check.equal(id, s.producerId(), "producer id");
        Check.equal(0, s.producerEpoch(), "producer epoch");
        Check.equal(9, s.lastSequence(), "last sequence");
        Check.equal(java.util.OptionalLong.empty(), s.currentTransactionStartOffset(), "open transaction");
        String empty = ctx.topic("empty", 1);
        TopicPartition none = new TopicPartition(empty, 0);
        Check.equal(List.of(), ctx.admin.describeProducers(List.of(none)).partitionResult(none).get().activeProducers(),
                "producers of an empty partition");
        ctx.observe("producer", "epoch " + s.producerEpoch() + ", last sequence " + s.lastSequence());
    }

    @SuppressWarnings("unused")
    private static List<String> sorted(Collection<String> c) {
        return new ArrayList<>(new TreeSet<>(c));
    }
}
