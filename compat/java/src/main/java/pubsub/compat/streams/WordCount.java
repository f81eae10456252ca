package pubsub.compat.streams;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.LongDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;

/**
 * The Kafka Streams word count that crates/cli/tests/cli/streams.rs runs against pubsub and
 * against Apache Kafka: lines in, (word, count) out, through a repartition topic (the groupBy on
 * the word) and a count store backed by a changelog topic, with processing.guarantee
 * at_least_once (or the one `run` is given, e.g. exactly_once_v2). One class, several modes, each
 * printing plain lines on stdout for the test to read:
 *
 * <pre>
 *   create BOOTSTRAP PARTITIONS TOPIC...      create topics (replication factor: the broker's)
 *   feed BOOTSTRAP TOPIC                      produce each stdin line as a record (acks=all)
 *   run BOOTSTRAP APP_ID IN OUT STATE_DIR [GUARANTEE [PAUSE_MS]]
 *                                             run the topology until stdin closes, then close;
 *                                             GUARANTEE: processing.guarantee (at_least_once);
 *                                             PAUSE_MS > 0: sleep that long per count and
 *                                             print "processed N" after each (N since start)
 *   counts BOOTSTRAP TOPIC [ISOLATION]        read TOPIC (values: longs) to its end with
 *                                             isolation.level ISOLATION (read_uncommitted):
 *                                             "records N", "WORD COUNT"... (last count per word)
 *   topics BOOTSTRAP                          each topic: partitions, cleanup.policy, configs set on it
 *   lag BOOTSTRAP GROUP                       "lag N": end offsets minus GROUP's committed offsets
 *   offsets BOOTSTRAP TOPIC                   "PARTITION EARLIEST LATEST" for each partition
 * </pre>
 */
public final class WordCount {
  private WordCount() {}

  public static void main(String[] args) throws Exception {
    if (args.length < 2) {
      usage();
    }
    switch (args[0]) {
      case "create" -> create(args[1], Integer.parseInt(args[2]), Arrays.asList(args).subList(3, args.length));
      case "feed" -> feed(args[1], args[2]);
      case "run" ->
          run(
              args[1],
              args[2],
              args[3],
              args[4],
              args[5],
              args.length > 6 ? args[6] : StreamsConfig.AT_LEAST_ONCE,
              args.length > 7 ? Long.parseLong(args[7]) : 0);
      case "counts" -> counts(args[1], args[2], args.length > 3 ? args[3] : "read_uncommitted");
      case "topics" -> topics(args[1]);
      case "lag" -> lag(args[1], args[2]);
      case "offsets" -> offsets(args[1], args[2]);
      default -> usage();
    }
  }

  private static void usage() {
    System.err.println("usage: WordCount create|feed|run|counts|topics|lag|offsets BOOTSTRAP ...");
    System.exit(2);
  }

  /**
   * The word-count topology: split, re-key by word (repartition), count (store + changelog). With
   * {@code pauseMs > 0} each count, once its store update is on its way to the changelog, sleeps
   * that long and prints "processed N" before it is sent to the output topic: under
   * exactly_once_v2 the thread's transaction then holds a changelog record through every pause,
   * so a process killed during one dies inside an open transaction.
   */
  static Topology topology(String input, String output, long pauseMs) {
    StreamsBuilder builder = new StreamsBuilder();
    var counted =
        builder.stream(input, Consumed.with(Serdes.String(), Serdes.String()))
            .flatMapValues(line -> Arrays.asList(line.toLowerCase(Locale.ROOT).split("\\W+")))
            .filter((key, word) -> !word.isEmpty())
            .groupBy((key, word) -> word, Grouped.with("words", Serdes.String(), Serdes.String()))
            .count(Materialized.as("counts"))
            .toStream();
    if (pauseMs > 0) {
      java.util.concurrent.atomic.AtomicLong processed = new java.util.concurrent.atomic.AtomicLong();
      counted =
          counted.peek(
              (word, count) -> {
                try {
                  Thread.sleep(pauseMs);
                } catch (InterruptedException e) {
                  Thread.currentThread().interrupt();
                }
                System.out.println("processed " + processed.incrementAndGet());
                System.out.flush();
              });
    }
    counted.to(output, Produced.with(Serdes.String(), Serdes.Long()));
    return builder.build();
  }

  private static void create(String bootstrap, int partitions, List<String> topics) throws Exception {
    try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
      List<NewTopic> fresh = new ArrayList<>();
      for (String t : topics) {
        fresh.add(new NewTopic(t, java.util.Optional.of(partitions), java.util.Optional.empty()));
      }
      admin.createTopics(fresh).all().get();
    }
    System.out.println("created " + String.join(" ", topics));
  }

  private static void feed(String bootstrap, String topic) throws Exception {
    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(ProducerConfig.ACKS_CONFIG, "all");
    p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
    p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
    int sent = 0;
    try (KafkaProducer<String, String> producer = new KafkaProducer<>(p);
        BufferedReader in =
            new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
      for (String line = in.readLine(); line != null; line = in.readLine()) {
        // Synchronous: each line acknowledged before the next, so the test knows what was fed.
        producer.send(new ProducerRecord<>(topic, line)).get();
        sent++;
      }
    }
    System.out.println("fed " + sent);
  }

  private static void run(
      String bootstrap,
      String appId,
      String input,
      String output,
      String stateDir,
      String guarantee,
      long pauseMs)
      throws Exception {
    Properties p = new Properties();
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
    p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, guarantee);
    p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
    // Commit often and forward every update, so a test does not wait 30 s per commit and each
    // increment reaches the output topic (the final count per word is the same either way).
    p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 200);
    p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
    // Purge consumed repartition records (AdminClient.deleteRecords) at every commit.
    p.put(StreamsConfig.REPARTITION_PURGE_INTERVAL_MS_CONFIG, 200);
    if (pauseMs > 0) {
      // Each record on its way at once (Streams' producers linger 100 ms by default), so the
      // broker holds the open transaction's records while the thread pauses.
      p.put(StreamsConfig.producerPrefix(ProducerConfig.LINGER_MS_CONFIG), 0);
    }
    // A transaction open when the broker is killed stays open until the broker is back and the
    // app commits it. Streams' default transaction timeout (10 s) is shorter than Apache Kafka's
    // restart on a loaded machine (14 s seen): its coordinator then aborts the transaction at
    // the timeout, answers the app's commit with INVALID_TXN_STATE, and the app stops. What the
    // tests check is recovery from the kill, not the timeout, so they give it a minute.
    p.put(StreamsConfig.producerPrefix(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG), 60000);
    // Streams does not leave its group on close; a restarted app (a new member) waits for the
    // old member's session to expire, 45 s by default.
    p.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), 10000);
    p.put(StreamsConfig.consumerPrefix(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG), 1000);
    p.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
    p.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
    KafkaStreams streams = new KafkaStreams(topology(input, output, pauseMs), p);
    CountDownLatch closed = new CountDownLatch(1);
    streams.setStateListener(
        (now, before) -> {
          System.out.println("state " + now);
          System.out.flush();
        });
    streams.setUncaughtExceptionHandler(
        e -> {
          // The whole cause chain: a failed commit says why only in its causes.
          StringBuilder chain = new StringBuilder("error " + e);
          for (Throwable c = e.getCause(); c != null && c != c.getCause(); c = c.getCause()) {
            chain.append(" <- caused by ").append(c);
          }
          System.out.println(chain);
          System.out.flush();
          return StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
    streams.start();
    // The test stops the app by closing stdin: a clean close commits what was processed.
    Thread stdin =
        new Thread(
            () -> {
              try {
                while (System.in.read() >= 0) {
                  // discard
                }
              } catch (java.io.IOException e) {
                // closed
              }
              closed.countDown();
            });
    stdin.setDaemon(true);
    stdin.start();
    closed.await();
    boolean clean = streams.close(Duration.ofSeconds(60));
    System.out.println(clean ? "closed" : "close timed out");
    System.out.flush();
    System.exit(clean ? 0 : 1);
  }

  private static void counts(String bootstrap, String topic, String isolation) {
    Properties p = new Properties();
    p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
    p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class);
    p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, LongDeserializer.class);
    p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    TreeMap<String, Long> last = new TreeMap<>();
    long records = 0;
    try (KafkaConsumer<String, Long> consumer = new KafkaConsumer<>(p)) {
      List<TopicPartition> parts = new ArrayList<>();
      consumer.partitionsFor(topic, Duration.ofSeconds(60))
          .forEach(i -> parts.add(new TopicPartition(i.topic(), i.partition())));
      consumer.assign(parts);
      consumer.seekToBeginning(parts);
      Map<TopicPartition, Long> end = consumer.endOffsets(parts, Duration.ofSeconds(60));
      while (!caughtUp(consumer, end)) {
        for (ConsumerRecord<String, Long> r : consumer.poll(Duration.ofMillis(500))) {
          if (r.offset() < end.get(new TopicPartition(r.topic(), r.partition()))) {
            last.put(r.key(), r.value());
            records++;
          }
        }
      }
    }
    System.out.println("records " + records);
    last.forEach((word, count) -> System.out.println(word + " " + count));
  }

  private static boolean caughtUp(KafkaConsumer<?, ?> consumer, Map<TopicPartition, Long> end) {
    for (Map.Entry<TopicPartition, Long> e : end.entrySet()) {
      if (consumer.position(e.getKey(), Duration.ofSeconds(60)) < e.getValue()) {
        return false;
      }
    }
    return true;
  }

  private static void topics(String bootstrap) throws Exception {
    try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
      Collection<String> names = new java.util.TreeSet<>(admin.listTopics().names().get());
      List<ConfigResource> resources = new ArrayList<>();
      names.forEach(n -> resources.add(new ConfigResource(ConfigResource.Type.TOPIC, n)));
      Map<ConfigResource, Config> configs = admin.describeConfigs(resources).all().get();
      var descriptions = admin.describeTopics(names).allTopicNames().get();
      for (String n : names) {
        Config c = configs.get(new ConfigResource(ConfigResource.Type.TOPIC, n));
        // The configs set on the topic itself (Streams sets some on its internal topics).
        TreeMap<String, String> set = new TreeMap<>();
        for (ConfigEntry e : c.entries()) {
          if (e.source() == ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG) {
            set.put(e.name(), e.value());
          }
        }
        System.out.println(
            n
                + " partitions="
                + descriptions.get(n).partitions().size()
                + " cleanup.policy="
                + c.get("cleanup.policy").value()
                + " set="
                + set);
      }
    }
  }

  private static void lag(String bootstrap, String group) throws Exception {
    try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
      Map<TopicPartition, org.apache.kafka.clients.consumer.OffsetAndMetadata> committed =
          admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
      Map<TopicPartition, org.apache.kafka.clients.admin.OffsetSpec> latest = new java.util.HashMap<>();
      committed.keySet().forEach(tp -> latest.put(tp, org.apache.kafka.clients.admin.OffsetSpec.latest()));
      var ends = admin.listOffsets(latest).all().get();
      long lag = 0;
      for (var e : committed.entrySet()) {
        lag += ends.get(e.getKey()).offset() - e.getValue().offset();
      }
      System.out.println("committed " + committed.size());
      System.out.println("lag " + lag);
    }
  }

  private static void offsets(String bootstrap, String topic) throws Exception {
    try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
      int partitions =
          admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions().size();
      for (int p = 0; p < partitions; p++) {
        TopicPartition tp = new TopicPartition(topic, p);
        long earliest =
            admin.listOffsets(Map.of(tp, org.apache.kafka.clients.admin.OffsetSpec.earliest()))
                .all().get().get(tp).offset();
        long latest =
            admin.listOffsets(Map.of(tp, org.apache.kafka.clients.admin.OffsetSpec.latest()))
                .all().get().get(tp).offset();
        System.out.println(p + " " + earliest + " " + latest);
      }
    }
  }
}
