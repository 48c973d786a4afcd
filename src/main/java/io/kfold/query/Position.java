package io.kfold.query;

import org.apache.kafka.common.TopicPartition;

import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Where a write's last event lies in its events topic: partition and offset. Clients see it as an
 * opaque token (base64url of {@code topic:partition:offset}) in write answers and pass it back as
 * {@code ?minPosition=} so that a query waits until the fold has folded past it.
 */
public record Position(String topic, int partition, long offset) {

  // Kafka topic names are [a-zA-Z0-9._-]: a ':' cannot be part of one.
  private static final Pattern TEXT = Pattern.compile("([a-zA-Z0-9._-]{1,249}):(\\d{1,9}):(\\d{1,18})");

  public TopicPartition topicPartition() {
    return new TopicPartition(topic, partition);
  }

  /** The opaque token of this position. */
  public String token() {
    return Base64.getUrlEncoder().withoutPadding()
        .encodeToString((topic + ":" + partition + ":" + offset).getBytes(StandardCharsets.UTF_8));
  }

  /** The position a token names; {@link IllegalArgumentException} with a message for a 400 when it names none. */
  public static Position parse(String token) {
    String text;
    try {
      text = new String(Base64.getUrlDecoder().decode(token), StandardCharsets.UTF_8);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("malformed position '" + token + "': pass the 'position' of a write's answer");
    }
    Matcher matcher = TEXT.matcher(text);
    if (!matcher.matches()) {
      throw new IllegalArgumentException("malformed position '" + token + "': pass the 'position' of a write's answer");
    }
    return new Position(matcher.group(1), Integer.parseInt(matcher.group(2)), Long.parseLong(matcher.group(3)));
  }
}
