package io.scalelab.flink;

import java.util.HashMap;
import java.util.Map;

/** `--name value` program arguments; an unknown or missing one is an error that names it. */
final class Args {
    private final Map<String, String> values = new HashMap<>();

    Args(String[] argv, String... known) {
        java.util.Set<String> allowed = java.util.Set.of(known);
        for (int i = 0; i < argv.length; i++) {
            String arg = argv[i];
            if (!arg.startsWith("--") || !allowed.contains(arg.substring(2))) {
                throw new IllegalArgumentException("unknown argument " + arg + "; known: --" + String.join(", --", known));
            }
            if (i + 1 >= argv.length) {
                throw new IllegalArgumentException("argument " + arg + " needs a value");
            }
            values.put(arg.substring(2), argv[++i]);
        }
    }

    String get(String name) {
        String value = values.get(name);
        if (value == null) {
            throw new IllegalArgumentException("missing argument --" + name);
        }
        return value;
    }

    String get(String name, String fallback) {
        return values.getOrDefault(name, fallback);
    }

    long getLong(String name, long fallback) {
        String value = values.get(name);
        if (value == null) {
            return fallback;
        }
        try {
            return Long.parseLong(value);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("argument --" + name + " is not an integer: " + value);
        }
    }
}
