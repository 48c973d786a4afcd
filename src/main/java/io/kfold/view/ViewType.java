package io.kfold.view;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.entity.Command;
import io.kfold.entity.Envelope;
import io.kfold.types.Envelopes;
import io.kfold.entity.KfoldException;
import io.kfold.entity.NewEvent;
import io.kfold.entity.ViewDefinition;
import io.kfold.store.StoredEntity;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * A view's rows as an internal folded type: its events are the contributions the fold publishes to
 * {@code <app>.view.<name>.contributions}, each row is an entity keyed by the row's key, so the
 * fold's group, ownership, changelog, restores, standbys and forwarding keep rows as they keep
 * entities. Its name ({@link #PREFIX} + the view's) cannot be a user type's, whose names start
 * with a letter.
 *
 * <p>Versions: a row's state holds one part per {@link ViewVersion} of the view, so a new version
 * is built beside the one that answers, in the same rows and partitions: {@code {"versions":
 * {"<version>": {"entities": n, "row": <the view's row>, "applied": {"<source>": [offset, seq], …}}}}}.
 * Per source (a source partition, or its build from stored states), {@code applied} is the last
 * contribution applied. The contributions of one source to one row arrive in the order of their
 * (offset, seq) (one fold publishes a source partition at a time, in that order, and a new owner
 * republishes its outbox, older first, before it goes further), so one at or below that mark is a
 * copy of one applied already: a republished outbox or a rewound group.
 *
 * <p>The entity {@code ~built-<partition>} of each partition records which source partitions have
 * finished building each version into it ({@code {"built": {"<version>": ["<type>-<partition>", …]}}});
 * a version is complete in a partition when all have. The cluster answers from the newest version
 * complete in every partition ({@link #answering}).
 */
public final class ViewType implements io.kfold.entity.EntityType {

  /** Starts the name of every view's folded type. */
  public static final String PREFIX = "_view.";
  /** Starts the key of each partition's record of finished builds; no row key can start so. */
  private static final String BUILT = "~built-";

  private final ViewDefinition view;
  /** How many source partitions feed the view: each must finish a version's build. */
  private final int sources;
  /**
   * The hash of the definition's fingerprint, once: every contribution folded asks whether its
   * version is of this definition, and computing the fingerprint each time took about 2% of the
   * samples of the fold with views.
   */
  private final String definitionHash;
  /** The generation asked for: the highest any node asked for, or found built. */
  private volatile int generation = 1;
  /** The version reads answer from; null until one is complete in every partition. Only moves forward. */
  private volatile ViewVersion answering;

  /** @param partitions the partitions of each type the view is from */
  public ViewType(ViewDefinition view, int partitions) {
    this.view = view;
    this.definitionHash = ViewVersion.definitionHash(view.fingerprint());
    this.sources = view.from().size() * partitions;
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

  /** The version the fold builds and keeps: this definition at the generation asked for. */
  public ViewVersion target() {
    return new ViewVersion(definitionHash, generation);
  }

  /** A node asked for a rebuild, or a build of this generation was found: the target is at least it. */
  public void atLeastGeneration(int asked) {
    synchronized (this) {
      if (asked > generation) {
        generation = asked;
      }
    }
  }

  /** The version reads answer from, or null while no version is complete everywhere. */
  public ViewVersion answering() {
    return answering;
  }

  /**
   * A version is complete in every partition (the node directory saw it): reads answer from it if
   * it is newer than the one they answer from, or from this definition while the other is not.
   */
  public void completeEverywhere(ViewVersion version) {
    synchronized (this) {
      ViewVersion current = answering;
      boolean newer = current == null || version.compareTo(current) > 0;
      if (current == null || ours(version) && (!ours(current) || newer) || !ours(current) && newer) {
        answering = version;
      }
    }
  }

  /** Whether a version was built with this node's definition of the view. */
  public boolean ours(ViewVersion version) {
    return version.definition().equals(definitionHash);
  }

  /** The key of partition {@code partition}'s record of finished builds. */
  public static String builtKey(int partition) {
    return BUILT + partition;
  }

  /** Whether an entity of a view's type is a partition's record of finished builds, not a row. */
  public static boolean isBuiltRecord(String key) {
    return key.startsWith(BUILT);
  }

  /** The versions complete in the partition whose record of finished builds is {@code state}. */
  public List<ViewVersion> complete(JsonNode builtState) {
    List<ViewVersion> complete = new ArrayList<>();
    builtState.path("built").fields().forEachRemaining(version -> {
      if (version.getValue().size() >= sources) {
        complete.add(ViewVersion.parse(version.getKey()));
      }
    });
    return complete;
  }

  @Override
  public JsonNode initialState() {
    return JsonNodeFactory.instance.objectNode();
  }

  /**
   * Whether {@code contribution} was applied already: at or below its source's mark in its version,
   * a build already recorded, or of a definition this node does not have (it cannot apply those:
   * a version built with an older definition keeps its rows as they were).
   */
  public boolean applied(JsonNode state, JsonNode contribution) {
    Contribution c = Contribution.of(contribution);
    ViewVersion current = answering;
    if (!ours(c.version()) || current != null && ours(current) && c.version().compareTo(current) < 0) {
      return true;  // or older than the version reads answer from: retired, its rows dropped
    }
    if (c.op().equals("built")) {
      for (JsonNode source : state.path("built").path(c.version().toString())) {
        if (source.asText().equals(c.source())) {
          return true;
        }
      }
      return false;
    }
    JsonNode mark = state.path("versions").path(c.version().toString()).path("applied").get(c.source());
    if (mark == null) {
      return false;
    }
    long offset = mark.get(0).asLong();
    return c.offset() < offset || (c.offset() == offset && c.seq() <= mark.get(1).asInt());
  }

  @Override
  public JsonNode apply(JsonNode state, Envelope event) {
    return applyInPlace(state.deepCopy(), event);
  }

  /**
   * As {@link #apply}, but changes {@code state} and returns it: for the fold, whose working state
   * of a row is its own (parsed from the store, or left by the row's contribution before; the fold
   * keeps no other reference to it that reads it as it was). A hot row takes thousands of
   * contributions in a poll, and copying its whole state (members, marks) for each was a tenth of
   * what the views cost the fold. When it throws, {@code state} is as it was.
   */
  public JsonNode applyInPlace(JsonNode state, Envelope event) {
    Contribution c = Contribution.of(event.payload());
    ObjectNode next = (ObjectNode) state;
    String version = c.version().toString();
    if (c.op().equals("built")) {
      next.with("built").withArray(version).add(c.source());
      return next;
    }
    ObjectNode versions = next.with("versions");
    ObjectNode part = (ObjectNode) versions.get(version);
    ObjectNode row = part == null ? view.emptyRow() : (ObjectNode) part.get("row");
    if (part != null && !(view instanceof ConfiguredView)) {
      row = row.deepCopy();  // a view in Java may have changed the row before it throws
    }
    JsonNode values = event.payload().path("values");
    // A configured view reads all it can fail on before it changes the row: past this line nothing throws.
    ObjectNode changed = c.op().equals("add") ? view.add(row, values) : view.subtract(row, values);
    dropOutdated(versions);
    if (part == null) {
      part = newPart(versions, version);
    }
    part.set("row", changed);
    part.put("entities", part.path("entities").asLong() + (c.op().equals("add") ? 1 : -1));
    ArrayNode mark = ((ObjectNode) part.get("applied")).putArray(c.source());
    mark.add(c.offset()).add(c.seq());
    return next;
  }

  private ObjectNode newPart(ObjectNode versions, String version) {
    ObjectNode part = versions.putObject(version);
    part.put("entities", 0);
    part.set("row", view.emptyRow());
    part.putObject("applied");
    return part;
  }

  /**
   * Drops the parts of versions older than the one reads answer from, once that one is of this
   * definition: nothing reads them again, and no contribution to them is applied.
   */
  private void dropOutdated(ObjectNode versions) {
    ViewVersion current = answering;
    if (current == null || !ours(current)) {
      return;
    }
    for (Iterator<Map.Entry<String, JsonNode>> parts = versions.fields(); parts.hasNext(); ) {
      ViewVersion version = ViewVersion.parse(parts.next().getKey());
      if (!version.sameDefinition(current) || version.compareTo(current) < 0) {
        parts.remove();
      }
    }
  }

  /**
   * What a read of a row answers, {@code {key, row, entities, version}}, from the version reads answer from;
   * null when the row has no entity there or was never written (a row whose entities all left
   * stays in the store, for its marks, but is no row). A 503 while no version is complete.
   */
  public ObjectNode answer(String key, StoredEntity stored) {
    return answer(key, stored == null ? null : parse(stored.state()));
  }

  /** As {@link #answer(String, StoredEntity)}, of a row's state. */
  public ObjectNode answer(String key, JsonNode state) {
    ViewVersion version = answeringOrUnavailable();
    JsonNode part = state == null ? null : state.path("versions").get(version.toString());
    if (part == null || part.path("entities").asLong() <= 0) {
      return null;
    }
    ObjectNode answer = JsonNodeFactory.instance.objectNode();
    answer.put("key", key);
    answer.set("row", view.answer((ObjectNode) part.get("row")));
    answer.put("entities", part.path("entities").asLong());
    answer.put("version", version.toString());
    return answer;
  }

  /** Whether a stored row has entities in the version reads answer from: a row to answer. */
  public boolean hasEntities(StoredEntity stored) {
    return stored != null && answer("", stored) != null;
  }

  private ViewVersion answeringOrUnavailable() {
    ViewVersion version = answering;
    if (version == null) {
      throw KfoldException.unavailable("view '" + view.name() + "' is being built from the stored states (version "
          + target() + "); it answers once every partition has it: see GET /v1/_views");
    }
    return version;
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

  /** The versions a row's state holds a part of, oldest first. */
  public static List<ViewVersion> versionsOf(JsonNode state) {
    TreeSet<ViewVersion> versions = new TreeSet<>();
    state.path("versions").fieldNames().forEachRemaining(name -> versions.add(ViewVersion.parse(name)));
    return List.copyOf(versions);
  }

  /** The parts of a contribution the fold reads. */
  private record Contribution(String op, ViewVersion version, String source, long offset, int seq) {
    static Contribution of(JsonNode contribution) {
      String op = contribution.path("op").asText();
      JsonNode source = contribution.path("source");
      if (!List.of("add", "subtract", "built").contains(op) || !contribution.path("version").isTextual()
          || !op.equals("built") && !source.path("offset").canConvertToLong()) {
        throw new IllegalArgumentException("not a view contribution: " + contribution);
      }
      String from = source.path("type").asText() + "-" + source.path("partition").asInt()
          + (source.path("build").asBoolean() ? Contributions.BUILD_SOURCE : "");
      return new Contribution(op, ViewVersion.parse(contribution.path("version").asText()), from,
          source.path("offset").asLong(), source.path("seq").asInt());
    }
  }
}
