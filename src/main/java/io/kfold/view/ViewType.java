package io.kfold.view;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.entity.Command;
import io.kfold.entity.Envelope;
import io.kfold.entity.Envelopes;
import io.kfold.entity.KfoldException;
import io.kfold.entity.NewEvent;
import io.kfold.store.StoredEntity;

import java.io.IOException;
import java.util.List;

/**
 * A view's rows as an internal folded type: its events are the contributions the fold publishes to
 * {@code <app>.view.<name>.contributions}, each row is an entity keyed by the row's key, so the
 * fold's group, ownership, changelog, restores, standbys and forwarding keep rows as they keep
 * entities. Its name ({@link #PREFIX} + the view's) cannot be a user type's, whose names start
 * with a letter.
 *
 * <p>A row's state is {@code {"entities": n, "row": <the view's row>, "applied": {"<type>-<partition>":
 * [offset, seq], …}}}: per source partition, the last contribution applied. The contributions of one
 * source partition to one row arrive in the order of their source offsets (one fold publishes a
 * source partition at a time, in that order, and a new owner republishes its outbox, older first,
 * before it folds further), so one at or below that mark is a copy of one applied already: a
 * republished outbox or a rewound group.
 */
public final class ViewType implements io.kfold.entity.EntityType {

  /** Starts the name of every view's folded type. */
  public static final String PREFIX = "_view.";

  private final ViewDefinition view;

  public ViewType(ViewDefinition view) {
    this.view = view;
  }

  public static String typeName(String view) {
    return PREFIX + view;
  }

  /** The view's name of a view type's name, or null for a user type. */
  public static String viewName(String type) {
    return type.startsWith(PREFIX) ? type.substring(PREFIX.length()) : null;
  }

  public ViewDefinition definition() {
    return view;
  }

  @Override
  public String name() {
    return typeName(view.name());
  }

  @Override
  public JsonNode initialState() {
    ObjectNode state = JsonNodeFactory.instance.objectNode();
    state.put("entities", 0);
    state.set("row", view.emptyRow());
    state.putObject("applied");
    return state;
  }

  /** Whether {@code contribution} was applied to the row already: at or below its source's mark. */
  public boolean applied(JsonNode rowState, JsonNode contribution) {
    Contribution c = Contribution.of(contribution);
    JsonNode mark = rowState.path("applied").get(c.source());
    if (mark == null) {
      return false;
    }
    long offset = mark.get(0).asLong();
    return c.offset() < offset || (c.offset() == offset && c.seq() <= mark.get(1).asInt());
  }

  @Override
  public JsonNode apply(JsonNode rowState, Envelope event) {
    Contribution c = Contribution.of(event.payload());
    ObjectNode state = rowState.deepCopy();
    ObjectNode row = (ObjectNode) state.get("row");
    long entities = state.path("entities").asLong();
    JsonNode values = event.payload().path("values");
    if (c.add()) {
      state.set("row", view.add(row, values));
      state.put("entities", entities + 1);
    } else {
      state.set("row", view.subtract(row, values));
      state.put("entities", entities - 1);
    }
    ArrayNode mark = ((ObjectNode) state.get("applied")).putArray(c.source());
    mark.add(c.offset()).add(c.seq());
    return state;
  }

  /**
   * What a read of a row answers, {@code {key, row, entities}}; null when the row has no entity left
   * or was never written (a row whose entities all left stays in the store, for its marks, but is
   * no row).
   */
  public ObjectNode answer(String key, StoredEntity stored) {
    return answer(key, stored == null ? null : parse(stored.state()));
  }

  /** As {@link #answer(String, StoredEntity)}, of a row's state. */
  public ObjectNode answer(String key, JsonNode state) {
    if (state == null || state.path("entities").asLong() <= 0) {
      return null;
    }
    ObjectNode answer = JsonNodeFactory.instance.objectNode();
    answer.put("key", key);
    answer.set("row", view.answer((ObjectNode) state.get("row")));
    answer.put("entities", state.path("entities").asLong());
    return answer;
  }

  /** Whether a stored row has entities: a row to answer. */
  public static boolean hasEntities(StoredEntity stored) {
    return stored != null && parse(stored.state()).path("entities").asLong() > 0;
  }

  private static JsonNode parse(byte[] state) {
    try {
      return Envelopes.parse(state);
    } catch (IOException e) {
      throw new IllegalStateException("a row's stored state is not JSON", e);
    }
  }

  /** Rows are written by the fold only. */
  @Override
  public List<NewEvent> decide(JsonNode state, long version, Command command) {
    throw KfoldException.badRequest("the rows of view '" + view.name() + "' are read only");
  }

  /** The parts of a contribution the dedupe reads. */
  private record Contribution(boolean add, String source, long offset, int seq) {
    static Contribution of(JsonNode contribution) {
      String op = contribution.path("op").asText();
      JsonNode source = contribution.path("source");
      if (!op.equals("add") && !op.equals("subtract") || !source.path("offset").canConvertToLong()) {
        throw new IllegalArgumentException("not a view contribution: " + contribution);
      }
      return new Contribution(op.equals("add"), source.path("type").asText() + "-" + source.path("partition").asInt(),
          source.path("offset").asLong(), source.path("seq").asInt());
    }
  }
}
