package pubsub.compat.clients;

import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.ExecutionException;
import java.util.function.BooleanSupplier;

/** The checks scenarios make; a failed one throws {@link Failed} with what was expected and seen. */
final class Check {
    private Check() {}

    /** A check that did not hold. */
    static final class Failed extends AssertionError {
        Failed(String message) {
            super(message);
        }
    }

    static void that(boolean condition, String what) {
        if (!condition) {
            throw new Failed(what);
        }
    }

    static void equal(Object expected, Object actual, String what) {
        if (!Objects.equals(expected, actual)) {
            throw new Failed(what + ": expected " + expected + ", got " + actual);
        }
    }

    /** Waits (up to {@code limit}) until {@code condition} holds; fails saying {@code what} otherwise. */
    static void eventually(Duration limit, String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + limit.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new Failed("gave up after " + limit.toSeconds() + " s waiting for " + what);
            }
            Thread.sleep(50);
        }
    }

    /** A call that must fail with {@code expected} as the cause (futures wrap it in ExecutionException). */
    @FunctionalInterface
    interface Call {
        void run() throws Exception;
    }

    static <T extends Throwable> T fails(Class<T> expected, String what, Call call) throws Exception {
        try {
            call.run();
        } catch (Exception e) {
            Throwable cause = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
            if (expected.isInstance(cause)) {
                return expected.cast(cause);
            }
            throw new Failed(what + ": expected " + expected.getSimpleName() + ", got " + Suite.describe(cause));
        }
        throw new Failed(what + ": expected " + expected.getSimpleName() + ", but it succeeded");
    }
}
