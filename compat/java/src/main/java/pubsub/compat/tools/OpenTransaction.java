package pubsub.compat.tools;

import java.nio.charset.StandardCharsets;
import java.util.Properties;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * A transactional producer that opens a transaction and never ends it, for
 * crates/cli/tests/cli/kafka_tools.rs to run `kafka-transactions` against:
 *
 * <pre>
 *   OpenTransaction BOOTSTRAP TOPIC PARTITION TRANSACTIONAL_ID RECORDS
 * </pre>
 *
 * initTransactions, beginTransaction, RECORDS records sent to TOPIC's PARTITION and flushed
 * (acknowledged: in the log), then "open" on stdout, then it waits for stdin to close and halts
 * without committing or aborting (or the test SIGKILLs it: a producer that died mid-transaction).
 * Its transaction timeout is 15 minutes (both brokers' maximum), so neither broker aborts the
 * transaction while the test runs.
 */
public final class OpenTransaction {
  private OpenTransaction() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 5) {
      System.err.println("usage: OpenTransaction BOOTSTRAP TOPIC PARTITION TRANSACTIONAL_ID RECORDS");
      System.exit(2);
    }
    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, args[3]);
    p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, 900000);
    p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
    p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
    int partition = Integer.parseInt(args[2]);
    int records = Integer.parseInt(args[4]);
    KafkaProducer<String, String> producer = new KafkaProducer<>(p);
    producer.initTransactions();
    producer.beginTransaction();
    for (int i = 0; i < records; i++) {
      producer.send(new ProducerRecord<>(args[1], partition, "k" + i, "open " + i));
    }
    producer.flush();
    System.out.println("open");
    System.out.flush();
    while (System.in.read() >= 0) {
      // wait for the test
    }
    Runtime.getRuntime().halt(0);
  }
}
