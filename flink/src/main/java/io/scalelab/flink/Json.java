package io.scalelab.flink;

import java.util.Locale;

/** A flat JSON object writer: the output records hold only strings and numbers. */
final class Json {
    private final StringBuilder out = new StringBuilder("{");

    Json put(String key, String value) {
        name(key);
        quote(value == null ? "" : value);
        return this;
    }

    Json put(String key, long value) {
        name(key);
        out.append(value);
        return this;
    }

    Json put(String key, double value) {
        name(key);
        out.append(String.format(Locale.ROOT, "%.9f", value));
        return this;
    }

    String done() {
        return out.append('}').toString();
    }

    private void name(String key) {
        if (out.length() > 1) {
            out.append(',');
        }
        quote(key);
        out.append(':');
    }

    private void quote(String text) {
        out.append('"');
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c == '"' || c == '\\') {
                out.append('\\').append(c);
            } else if (c < 0x20) {
                out.append(String.format("\\u%04x", (int) c));
            } else {
                out.append(c);
            }
        }
        out.append('"');
    }
}
