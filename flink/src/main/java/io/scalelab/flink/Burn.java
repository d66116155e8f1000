package io.scalelab.flink;

/** CPU work standing for a computation: naive Fibonacci, as Scalehub's join job burns. */
final class Burn {
    static volatile long sink;

    private Burn() {}

    /** Burn the CPU for about this many microseconds (busy, not sleeping). */
    static void micros(long micros) {
        if (micros <= 0) {
            return;
        }
        long end = System.nanoTime() + micros * 1000;
        while (System.nanoTime() < end) {
            sink += fibonacci(18);
        }
    }

    /** Scalehub's burn: the n-th Fibonacci number computed the slow way. */
    static long fibonacci(int n) {
        return n < 2 ? n : fibonacci(n - 1) + fibonacci(n - 2);
    }
}
