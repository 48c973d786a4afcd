package io.kfold.view;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.entity.Envelopes;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * What one entity's change brings to a view: its old share taken out of the row it counted in
 * (seq 0) and its new share put into the row it counts in now (seq 1), nothing when its share is the
 * same. Each is the value of a record to the view's contributions topic, keyed by the row's key:
 * {@code {"op": "add"|"subtract", "values": …, "source": {"type", "key", "partition", "offset", "seq"}}},
 * where {@code offset} is the entity's last event folded in the poll, so the source fields order the
 * contributions of a source partition and name each one once.
 */
public final class Contributions {

  /** A contribution record's key (the row's) and value. */
  public record Contribution(String rowKey, byte[] value) {}

  private Contributions() {}

  /**
   * @param before the entity's state before the change, plain JSON; null when it had none
   * @param after  its state after the change, plain JSON
   */
  public static List<Contribution> of(ViewDefinition view, String type, String key, JsonNode before, JsonNode after,
                                      int partition, long offset) {
    ViewDefinition.Share old = before == null ? null : view.share(type, before);
    ViewDefinition.Share now = after == null ? null : view.share(type, after);
    if (Objects.equals(old, now)) {
      return List.of();
    }
    List<Contribution> contributions = new ArrayList<>(2);
    if (old != null) {
      contributions.add(contribution("subtract", old, type, key, partition, offset, 0));
    }
    if (now != null) {
      contributions.add(contribution("add", now, type, key, partition, offset, 1));
    }
    return contributions;
  }

  private static Contribution contribution(String op, ViewDefinition.Share share, String type, String key,
                                           int partition, long offset, int seq) {
    ObjectNode value = JsonNodeFactory.instance.objectNode();
    value.put("op", op);
    value.set("values", share.values());
    value.putObject("source").put("type", type).put("key", key).put("partition", partition).put("offset", offset)
        .put("seq", seq);
    return new Contribution(share.rowKey(), Envelopes.toBytes(value));
  }
}
