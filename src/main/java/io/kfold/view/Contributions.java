package io.kfold.view;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.types.Envelopes;
import io.kfold.entity.ViewDefinition;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * What one event of an entity brings to a version of a view: its share before the event taken out
 * of the row it counted in (seq 0) and its share after put into the row it counts in now (seq 1),
 * nothing when its share is the same. Each is the value of a record to the view's contributions
 * topic, keyed by the row's key: {@code {"op": "add"|"subtract", "version", "values", "source":
 * {"type", "key", "partition", "offset", "seq"}}}, where {@code offset} is the event's, so the
 * source fields order the contributions of a source partition and name each one once, the same
 * whatever polls the events were folded in.
 *
 * <p>A build from stored states adds each entity's share once, as a source of its own ({@code
 * "build": true}, {@code offset} the build's chunk, {@code seq} the entity's place in it), and when
 * a source partition is done tells every partition of the view ({@code "op": "built"}).
 */
public final class Contributions {

  /** Ends the name of a build's source in a row's marks: a source partition's build, not its events. */
  public static final String BUILD_SOURCE = "#build";

  /** A contribution record's key (the row's) and value. */
  public record Contribution(String rowKey, byte[] value) {}

  private Contributions() {}

  /**
   * @param before the entity's state before the change, plain JSON; null when it had none
   * @param after  its state after the change, plain JSON
   */
  public static List<Contribution> of(ViewDefinition view, ViewVersion version, String type, String key,
                                      JsonNode before, JsonNode after, int partition, long offset) {
    ViewDefinition.Share old = before == null ? null : view.share(type, before);
    ViewDefinition.Share now = after == null ? null : view.share(type, after);
    if (Objects.equals(old, now)) {
      return List.of();
    }
    List<Contribution> contributions = new ArrayList<>(2);
    if (old != null) {
      contributions.add(contribution("subtract", version, old, source(type, key, partition, offset, 0)));
    }
    if (now != null) {
      contributions.add(contribution("add", version, now, source(type, key, partition, offset, 1)));
    }
    return contributions;
  }

  /** What an entity's stored state brings to a version being built; null when it counts in no row. */
  public static Contribution built(ViewDefinition view, ViewVersion version, String type, String key, JsonNode state,
                                   int partition, long chunk, int seq) {
    ViewDefinition.Share share = view.share(type, state);
    return share == null ? null
        : contribution("add", version, share, source(type, key, partition, chunk, seq).put("build", true));
  }

  /** Tells a partition of the view that a source partition has built the version whole. */
  public static byte[] buildDone(ViewVersion version, String type, int partition) {
    ObjectNode value = JsonNodeFactory.instance.objectNode();
    value.put("op", "built").put("version", version.toString());
    value.putObject("source").put("type", type).put("partition", partition);
    return Envelopes.toBytes(value);
  }

  private static ObjectNode source(String type, String key, int partition, long offset, int seq) {
    return JsonNodeFactory.instance.objectNode().put("type", type).put("key", key).put("partition", partition)
        .put("offset", offset).put("seq", seq);
  }

  private static Contribution contribution(String op, ViewVersion version, ViewDefinition.Share share,
                                           ObjectNode source) {
    ObjectNode value = JsonNodeFactory.instance.objectNode();
    value.put("op", op).put("version", version.toString());
    value.set("values", share.values());
    value.set("source", source);
    return new Contribution(share.rowKey(), Envelopes.toBytes(value));
  }
}
