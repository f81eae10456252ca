package pubsub.compat.tools;

import java.lang.reflect.Field;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * benches/txn.py's loads timed with the reference Java client (kafka-clients), for
 * benches/txn.sh to run next to the librdkafka figures:
 *
 * <pre>
 *   TxnBench BOOTSTRAP produce-idempotent TOPIC MESSAGES SIZE
 *   TxnBench BOOTSTRAP produce-txn TOPIC MESSAGES SIZE PER_TXN
 *   TxnBench BOOTSTRAP consume TOPIC MESSAGES ISOLATION
 *   TxnBench BOOTSTRAP create TOPIC...
 * </pre>
 *
 * <p>Producers as benches/txn.py's: acks=all, idempotent, linger.ms 5, batch.size 200 KiB, the
 * client's default of 5 requests in flight, and buffer.memory at the client's default of 32 MiB
 * (send blocks while it is full): with room for the whole run, the idempotent producer buffered
 * 100 MB of batches and the JVM spent about a quarter of that run in GC pauses copying them. The transactional one runs
 * beginTransaction, PER_TXN sends, commitTransaction (which flushes) until MESSAGES are sent; the
 * idempotent one sends MESSAGES and flushes. Both first send an untimed warm-up of 2,000 records (in
 * transactions of PER_TXN for the transactional one): the producer id, the connections, the
 * leader, and the JIT's first compilations. The consumer is assigned partition 0 of TOPIC, reads
 * MESSAGES records from the start with isolation.level ISOLATION, timed from the first.
 *
 * <p>Prints one line on stdout, {@code MB/s records/s seconds}. The transactional producer also
 * prints on stderr which transaction version the client chose against this broker ({@code
 * transaction version 2 (KIP-890) ...}) and how far the coordinator's producer epoch moved over the
 * timed transactions (DescribeTransactions before and after): transaction version 2 bumps it once
 * per transaction, and adds partitions implicitly with Produce v12 instead of an
 * AddPartitionsToTxn round trip.
 */
public final class TxnBench {
  private static final int WARM_UP = 2000;

  private TxnBench() {}

  public static void main(String[] args) throws Exception {
    if (args.length < 3) {
      usage();
    }
    String bootstrap = args[0];
    String mode = args[1];
    if (mode.equals("create")) {
      create(bootstrap, List.of(args).subList(2, args.length));
      return;
    }
    if (args.length < 5) {
      usage();
    }
    String topic = args[2];
    int n = Integer.parseInt(args[3]);
    double seconds;
    int size = 1024;
    switch (mode) {
      case "produce-idempotent":
        size = Integer.parseInt(args[4]);
        seconds = produce(bootstrap, topic, n, size, 0);
        break;
      case "produce-txn":
        if (args.length != 6) {
          usage();
        }
        size = Integer.parseInt(args[4]);
        seconds = produce(bootstrap, topic, n, size, Integer.parseInt(args[5]));
        break;
      case "consume":
        seconds = consume(bootstrap, topic, n, args[4]);
        break;
      default:
        usage();
        return;
    }
    double mb = (double) n * size / 1e6;
    System.out.printf("%.1f %.0f %.2f%n", mb / seconds, n / seconds, seconds);
  }

  private static void usage() {
    System.err.println(
        "usage: TxnBench BOOTSTRAP produce-idempotent TOPIC MESSAGES SIZE\n"
            + "       TxnBench BOOTSTRAP produce-txn TOPIC MESSAGES SIZE PER_TXN\n"
            + "       TxnBench BOOTSTRAP consume TOPIC MESSAGES ISOLATION\n"
            + "       TxnBench BOOTSTRAP create TOPIC...");
    System.exit(2);
  }

  /** Seconds to send `n` records of `size` bytes; `perTxn` 0 is the idempotent producer. */
  private static double produce(String bootstrap, String topic, int n, int size, int perTxn)
      throws Exception {
    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(ProducerConfig.ACKS_CONFIG, "all");
    p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
    p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
    p.put(ProducerConfig.BATCH_SIZE_CONFIG, 200 * 1024);
    p.put(ProducerConfig.BUFFER_MEMORY_CONFIG, 32L * 1024 * 1024);
    p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
    p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
    String txnId = "bench-" + UUID.randomUUID();
    if (perTxn > 0) {
      p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
    }
    byte[] value = new byte[size];
    java.util.Arrays.fill(value, (byte) 'x');
    AtomicReference<Exception> failed = new AtomicReference<>();
    Callback report =
        (meta, err) -> {
          if (err != null) {
            failed.compareAndSet(null, err);
          }
        };
    try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
      if (perTxn > 0) {
        producer.initTransactions();
      }
      sendAll(producer, topic, Math.min(WARM_UP, n), value, perTxn, report);
      int before = perTxn > 0 ? coordinatorEpoch(bootstrap, txnId) : 0;
      long start = System.nanoTime();
      sendAll(producer, topic, n, value, perTxn, report);
      double seconds = (System.nanoTime() - start) / 1e9;
      if (failed.get() != null) {
        System.err.println("deliveries failed: " + failed.get());
        System.exit(1);
      }
      if (perTxn > 0) {
        int after = coordinatorEpoch(bootstrap, txnId);
        int transactions = (n + perTxn - 1) / perTxn;
        System.err.printf(
            "transaction version %s (java client against %s): coordinator epoch %d -> %d over %d"
                + " transactions%n",
            transactionVersion(producer), bootstrap, before, after, transactions);
      }
      return seconds;
    }
  }

  private static void sendAll(
      KafkaProducer<byte[], byte[]> producer,
      String topic,
      int n,
      byte[] value,
      int perTxn,
      Callback report) {
    int sent = 0;
    while (sent < n) {
      int batch = Math.min(perTxn > 0 ? perTxn : n, n - sent);
      if (perTxn > 0) {
        producer.beginTransaction();
      }
      for (int i = 0; i < batch; i++) {
        producer.send(new ProducerRecord<>(topic, 0, null, value), report);
      }
      if (perTxn > 0) {
        producer.commitTransaction();
      }
      sent += batch;
    }
    if (perTxn == 0) {
      producer.flush();
    }
  }

  /**
   * "2 (KIP-890)" or "1" as the client decided from the broker's finalized transaction.version
   * feature: read from the producer's TransactionManager, which keeps it private (a benchmark's
   * look inside, not an API); "unknown" if this client version keeps it elsewhere.
   */
  private static String transactionVersion(KafkaProducer<?, ?> producer) {
    try {
      Field f = KafkaProducer.class.getDeclaredField("transactionManager");
      f.setAccessible(true);
      Object tm = f.get(producer);
      boolean v2 = (boolean) tm.getClass().getMethod("isTransactionV2Enabled").invoke(tm);
      return v2 ? "2 (KIP-890)" : "1";
    } catch (ReflectiveOperationException | RuntimeException e) {
      return "unknown (" + e + ")";
    }
  }

  private static int coordinatorEpoch(String bootstrap, String txnId) throws Exception {
    try (Admin admin = Admin.create(adminProps(bootstrap))) {
      return admin
          .describeTransactions(List.of(txnId))
          .description(txnId)
          .get(60, TimeUnit.SECONDS)
          .producerEpoch();
    }
  }

  /** Seconds to read `n` records from the start of `topic`'s partition 0, timed from the first. */
  private static double consume(String bootstrap, String topic, int n, String isolation) {
    Properties p = new Properties();
    p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
    p.put(ConsumerConfig.FETCH_MAX_BYTES_CONFIG, 50 * 1024 * 1024);
    p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 10000);
    p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
    p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
    long got = 0;
    long start = 0;
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(600);
    try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
      List<TopicPartition> tps = List.of(new TopicPartition(topic, 0));
      c.assign(tps);
      c.seekToBeginning(tps);
      while (got < n && System.nanoTime() < deadline) {
        ConsumerRecords<byte[], byte[]> records = c.poll(Duration.ofSeconds(1));
        if (!records.isEmpty() && start == 0) {
          start = System.nanoTime();
        }
        got += records.count();
      }
      double seconds = (System.nanoTime() - (start == 0 ? System.nanoTime() : start)) / 1e9;
      if (got < n) {
        System.err.println("consumed " + got + " of " + n);
        System.exit(1);
      }
      return seconds;
    }
  }

  private static void create(String bootstrap, List<String> topics) throws Exception {
    List<NewTopic> all = new ArrayList<>();
    for (String t : topics) {
      all.add(new NewTopic(t, 1, (short) 1));
    }
    try (Admin admin = Admin.create(adminProps(bootstrap))) {
      admin.createTopics(all).all().get(60, TimeUnit.SECONDS);
    }
  }

  private static Properties adminProps(String bootstrap) {
    Properties p = new Properties();
    p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    return p;
  }
}
