package pubsub.compat.clients;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The Java client suite (kafka-clients, the reference client) against one
 * broker: every scenario of {@link ProducerScenarios}, {@link ConsumerScenarios},
 * {@link GroupScenarios}, {@link AdminScenarios} and {@link TransactionScenarios} in
 * turn, each reported on one line:
 *
 * <pre>
 *   PASS producer.acks-all
 *   FAIL admin.delete-records: low watermark of t-0: expected 3, got 0
 *   SKIP admin.describe-producers
 *   OBSERVE producer.max-message-bytes too-large = RecordTooLargeException
 * </pre>
 *
 * OBSERVE lines are what a client saw that must be the same on every broker
 * (error classes, offsets, config sources); the caller compares them between
 * pubsub and Apache Kafka. The exit status is 1 when any scenario failed.
 *
 * <p>Usage: {@code Suite BOOTSTRAP [--skip a,b] [--only a,b]}; the
 * environment variable PUBSUB_BIN names the {@code pubsub} binary, whose
 * {@code produce --key-separator} the partitioner scenario compares with the
 * Java producer's.
 */
public final class Suite {
    /** One scenario: throws (usually {@link Check.Failed}) when a check fails. */
    @FunctionalInterface
    public interface Scenario {
        void run(Context ctx) throws Exception;
    }

    private Suite() {}

    /** Every scenario, by name, in the order they run. */
    static Map<String, Scenario> all() {
        Map<String, Scenario> all = new LinkedHashMap<>();
        ProducerScenarios.register(all);
        ConsumerScenarios.register(all);
        GroupScenarios.register(all);
        AdminScenarios.register(all);
        TransactionScenarios.register(all);
        return all;
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: Suite BOOTSTRAP [--skip a,b] [--only a,b] | --list");
            System.exit(2);
        }
        Map<String, Scenario> all = all();
        if (args[0].equals("--list")) {
            all.keySet().forEach(System.out::println);
            return;
        }
        Set<String> skip = new TreeSet<>();
        Set<String> only = new TreeSet<>();
        for (int i = 1; i + 1 < args.length; i += 2) {
            Set<String> into = switch (args[i]) {
                case "--skip" -> skip;
                case "--only" -> only;
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            };
            into.addAll(Arrays.asList(args[i + 1].split(",")));
        }
        for (String name : union(skip, only)) {
            if (!all.containsKey(name)) {
                System.err.println("no scenario named " + name);
                System.exit(2);
            }
        }
        List<String> failed = new ArrayList<>();
        try (Context ctx = new Context(args[0], System.getenv("PUBSUB_BIN"))) {
            for (Map.Entry<String, Scenario> e : all.entrySet()) {
                String name = e.getKey();
                if (skip.contains(name) || (!only.isEmpty() && !only.contains(name))) {
                    System.out.println("SKIP " + name);
                    continue;
                }
                ctx.begin(name);
                long start = System.nanoTime();
                try {
                    e.getValue().run(ctx);
                    System.out.printf("PASS %s (%d ms)%n", name, (System.nanoTime() - start) / 1_000_000);
                } catch (Throwable t) {
                    failed.add(name);
                    System.out.println("FAIL " + name + ": " + describe(t));
                    StringWriter trace = new StringWriter();
                    t.printStackTrace(new PrintWriter(trace));
                    System.err.println("--- " + name + "\n" + trace);
                } finally {
                    ctx.end();
                }
                System.out.flush();
            }
        }
        System.out.println(failed.isEmpty() ? "all scenarios passed" : "failed: " + String.join(", ", failed));
        System.out.flush();
        // Client threads (a consumer left by a failed scenario) must not keep the JVM up.
        System.exit(failed.isEmpty() ? 0 : 1);
    }

    private static Set<String> union(Set<String> a, Set<String> b) {
        Set<String> u = new TreeSet<>(a);
        u.addAll(b);
        return u;
    }

    /** A failure's message, with the cause chain's classes and messages. */
    static String describe(Throwable t) {
        StringBuilder s = new StringBuilder();
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (s.length() > 0) {
                s.append(" <- ");
            }
            s.append(c instanceof Check.Failed ? "" : c.getClass().getSimpleName() + ": ").append(c.getMessage());
            if (c.getCause() == c) {
                break;
            }
        }
        return s.toString().replace('\n', ' ');
    }
}
