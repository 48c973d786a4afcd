package io.kfold.query;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.entity.EntityType;
import io.kfold.types.EntityTypes;
import io.kfold.types.Envelopes;
import io.kfold.entity.IndexDefinition;
import io.kfold.entity.KfoldException;
import io.kfold.store.EntityStore;
import io.kfold.store.IndexBuild;
import io.kfold.store.StoreBatch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Makes the store's index entries follow the declared indexes when they do not: an index added, or
 * its path or kind changed, since the store was written, or a store written before indexes existed
 * (whose types have no list of every entity either). Such an index is built from the stored states,
 * a chunk at a time, at a cost that grows with the entities, not the events; an index no longer
 * declared loses its entries. The store keeps a record per index ({@link IndexBuild}): the
 * definition its entries follow and how far their build has got, written with each chunk, so a
 * build resumes where it stopped.
 *
 * <p>Why a build is exact while the fold goes on: the fold, restores and standbys write, with each
 * state, the entries that its change gains and loses, for every declared index, built or not. An
 * entity the build has passed had exactly its state's entries then, so those changes keep it exact.
 * One it has not passed has at most its state's entries (the index's old entries were deleted
 * before anything wrote new ones, and a change removes what it loses), and the build puts them all
 * when it gets there. The build reads a chunk of states and writes their entries with no other
 * write in between ({@link EntityStore#writeFromStates}), so it never writes the entries of a state
 * that a change replaced meanwhile.
 */
public final class IndexBuilds {

  private static final Logger LOG = LoggerFactory.getLogger(IndexBuilds.class);
  /** Entities per chunk: one write, and as long as the fold may wait for its writes. */
  static final int CHUNK = 1000;
  private static final byte[] NO_VALUE = new byte[0];

  private final EntityTypes types;
  private final EntityStore store;

  public IndexBuilds(EntityTypes types, EntityStore store) {
    this.types = types;
    this.store = store;
  }

  /**
   * Compares the declared indexes with the store's records, before anything folds: deletes the
   * entries of an index no longer declared or declared otherwise, and records a build of each index
   * whose entries do not follow its definition (at once ready when the type has no entities yet).
   * Blocks on the store.
   */
  public void reconcile() {
    Map<String, IndexBuild> recorded = new LinkedHashMap<>();
    store.indexBuilds().forEach(build -> recorded.put(id(build.type(), build.index()), build));
    StoreBatch batch = new StoreBatch();
    for (EntityType type : types.all()) {
      long entities = -1;
      for (Map.Entry<String, String> index : definitions(type.name()).entrySet()) {
        IndexBuild record = recorded.remove(id(type.name(), index.getKey()));
        if (record != null && record.definition().equals(index.getValue())) {
          continue;  // ready, or a build that goes on from where it stopped
        }
        if (entities < 0) {
          entities = store.countStates(type.name());
        }
        batch.deleteIndex(type.name(), index.getKey());
        IndexBuild build = IndexBuild.begin(type.name(), index.getKey(), index.getValue(), entities);
        batch.putIndexBuild(entities == 0 ? build.completed() : build);
        if (entities > 0) {
          LOG.info("{}: building it from {} stored entities ({})", name(type.name(), index.getKey()), entities,
              record == null ? "no entries of it yet" : "its entries followed " + record.definition());
        }
      }
    }
    for (IndexBuild gone : recorded.values()) {
      batch.deleteIndex(gone.type(), gone.index());
      LOG.info("{}: no longer declared, its entries are deleted", name(gone.type(), gone.index()));
    }
    if (!batch.isEmpty()) {
      store.write(batch);
    }
  }

  /**
   * Indexes the next chunk of entities of one type whose builds are not ready, and answers whether
   * any build was still going on. Blocks on the store; one thread at a time.
   */
  public boolean buildChunk() {
    List<IndexBuild> building = store.indexBuilds().stream().filter(build -> !build.ready()).toList();
    if (building.isEmpty()) {
      return false;
    }
    String type = building.get(0).type();
    List<IndexBuild> ofType = building.stream().filter(build -> build.type().equals(type)).toList();
    // The chunk starts after the entity that the least advanced build has reached.
    String from = null;
    for (int i = 0; i < ofType.size(); i++) {
      String upTo = ofType.get(i).builtUpTo();
      if (upTo == null) {
        from = null;
        break;
      }
      from = i == 0 || EntityStore.STATE_ORDER.compare(upTo, from) < 0 ? upTo : from;
    }
    Map<String, IndexDefinition> declared = new HashMap<>();
    types.indexes(type).forEach(index -> declared.put(index.name(), index));
    store.writeFromStates(type, from, CHUNK, states -> {
      StoreBatch batch = new StoreBatch();
      Map<String, JsonNode> parsed = new HashMap<>();
      for (IndexBuild build : ofType) {
        IndexDefinition index = declared.get(build.index());
        if (index == null && !build.index().equals(EntityStore.ALL_ENTITIES)) {
          throw new IllegalStateException(name(type, build.index()) + " is being built but not declared");
        }
        IndexBuild next = build;
        for (EntityStore.KeyedState state : states) {
          if (next.covers(state.key())) {
            continue;
          }
          if (index == null) {
            batch.putIndexEntry(type, EntityStore.ALL_ENTITIES, NO_VALUE, state.key());
          } else {
            JsonNode json = parsed.computeIfAbsent(state.key(), key -> parse(type, key, state.entity().state()));
            for (byte[] value : IndexValues.of(json, index)) {
              batch.putIndexEntry(type, index.name(), value, state.key());
            }
          }
          next = next.advanced(state.key(), 1);
        }
        if (states.size() < CHUNK) {
          next = next.completed();
          LOG.info("{}: built, {} entities", name(type, build.index()), next.built());
        }
        batch.putIndexBuild(next);
      }
      return batch;
    });
    return true;
  }

  /**
   * Fails with 503, saying how far the build has got, when the index's entries are being built: a
   * scan of it could miss entities. Blocks on the store.
   */
  public static void requireBuilt(EntityStore store, String type, String index) {
    IndexBuild build = store.indexBuild(type, index);
    if (build != null && !build.ready()) {
      throw new KfoldException(503, "Unavailable", name(type, index) + " is being built: " + build.built()
          + " entities indexed, of " + build.entities() + " when the build began; retry later",
          Map.of("indexBuilt", build.built(), "indexEntities", build.entities()));
    }
  }

  /** The declared indexes of a type and the list of all its entities, each with the fingerprint of its definition. */
  private Map<String, String> definitions(String type) {
    Map<String, String> definitions = new LinkedHashMap<>();
    definitions.put(EntityStore.ALL_ENTITIES, "list of all entities");
    for (IndexDefinition index : types.indexes(type)) {
      definitions.put(index.name(), "name=" + index.name() + " path=" + index.path() + " kind=" + index.kind().configName());
    }
    return definitions;
  }

  private static String name(String type, String index) {
    return index.equals(EntityStore.ALL_ENTITIES) ? "the list of all " + type : "index '" + index + "' of " + type;
  }

  private static String id(String type, String index) {
    return type + '\u0000' + index;
  }

  private static JsonNode parse(String type, String key, byte[] state) {
    try {
      return Envelopes.parse(state);
    } catch (IOException e) {
      throw new IllegalStateException("the stored state of " + type + " '" + key + "' is not JSON", e);
    }
  }
}
