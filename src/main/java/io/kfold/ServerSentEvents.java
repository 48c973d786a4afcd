package io.kfold;

import io.vertx.core.buffer.Buffer;

import java.nio.charset.StandardCharsets;
import java.util.function.BiConsumer;

/**
 * Reads a Server-Sent Events stream a line at a time: gathers an event's {@code event} and
 * {@code data} fields and hands them over at the blank line that ends it; comments are skipped.
 */
final class ServerSentEvents {

  private final BiConsumer<String, String> onEvent;
  private String event;
  private StringBuilder data;

  /** @param onEvent told each event's name ({@code message} when it has none) and its data */
  ServerSentEvents(BiConsumer<String, String> onEvent) {
    this.onEvent = onEvent;
  }

  void line(Buffer raw) {
    String line = raw.toString(StandardCharsets.UTF_8);
    if (line.endsWith("\r")) {
      line = line.substring(0, line.length() - 1);
    }
    if (line.isEmpty()) {
      if (data != null) {
        onEvent.accept(event == null ? "message" : event, data.toString());
      }
      event = null;
      data = null;
      return;
    }
    if (line.startsWith(":")) {
      return;
    }
    int colon = line.indexOf(':');
    String field = colon < 0 ? line : line.substring(0, colon);
    String value = colon < 0 ? "" : line.substring(colon + 1);
    if (value.startsWith(" ")) {
      value = value.substring(1);
    }
    if (field.equals("event")) {
      event = value;
    } else if (field.equals("data")) {
      data = data == null ? new StringBuilder(value) : data.append('\n').append(value);
    }
  }
}
