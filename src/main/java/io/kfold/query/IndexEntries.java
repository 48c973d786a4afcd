package io.kfold.query;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.types.EntityTypes;
import io.kfold.types.Envelopes;
import io.kfold.entity.IndexDefinition;
import io.kfold.store.ChangelogItem;
import io.kfold.store.EntityStore;
import io.kfold.store.StoreBatch;
import io.kfold.store.StoredEntity;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Keeps the index entries of entities equal to a function of their stored states: whoever writes a
 * state adds to the same batch the entries its new state gains and deletes those it loses, so an
 * index is never behind or ahead of its states. Besides the declared indexes, every entity has one
 * entry in {@link EntityStore#ALL_ENTITIES}, which lists a type's entities in key order.
 *
 * <p>Two writers: the fold, which knows each entity's state before and after a poll, and the
 * writes of changelog items (restores and standbys), see {@link #changelogBatch}. Entries are not
 * themselves in the changelog: a restore recomputes them from the states it writes. That keeps
 * the changelog as it was, and stays exact where changelogged entries could not: when an outbox
 * is published again after a crash, its changelog items are rebuilt from the store's current
 * states, and the entries that intermediate states had gained and lost would be unknown by then.
 * The cost is parsing the restored states (and the ones they replace) of indexed types.
 *
 * <p>Thread-safe: holds only the definitions.
 */
public final class IndexEntries {

  private static final byte[] NO_VALUE = new byte[0];

  private final Map<String, List<IndexDefinition>> byType = new HashMap<>();

  /** The folded types (the user's and the views'): the entities listed in {@link EntityStore#ALL_ENTITIES}. */
  private final java.util.Set<String> listed = new java.util.HashSet<>();

  public IndexEntries(EntityTypes types) {
    types.all().forEach(type -> byType.put(type.name(), types.indexes(type.name())));
    types.folded().forEach(type -> listed.add(type.name()));
  }

  /**
   * Adds to {@code batch} the index changes of an entity whose state goes from {@code before} to
   * {@code after}; null for no entity (before its first event).
   */
  public void changed(StoreBatch batch, String type, String key, JsonNode before, JsonNode after) {
    if (!listed.contains(type)) {
      return;  // the fold's own bookkeeping (the views' builds): no entity to list
    }
    if (before == null && after != null) {
      batch.putIndexEntry(type, EntityStore.ALL_ENTITIES, NO_VALUE, key);
    } else if (before != null && after == null) {
      batch.deleteIndexEntry(type, EntityStore.ALL_ENTITIES, NO_VALUE, key);
    }
    for (IndexDefinition index : byType.getOrDefault(type, List.of())) {
      List<byte[]> old = before == null ? List.of() : IndexValues.of(before, index);
      List<byte[]> now = after == null ? List.of() : IndexValues.of(after, index);
      // Both are sorted and distinct: one walk finds what is lost and what is gained.
      int i = 0;
      int j = 0;
      while (i < old.size() || j < now.size()) {
        int order = i == old.size() ? 1 : j == now.size() ? -1 : Arrays.compareUnsigned(old.get(i), now.get(j));
        if (order < 0) {
          batch.deleteIndexEntry(type, index.name(), old.get(i++), key);
        } else if (order > 0) {
          batch.putIndexEntry(type, index.name(), now.get(j++), key);
        } else {
          i++;
          j++;
        }
      }
    }
  }

  /**
   * A batch that writes changelog items as they are, each state followed by its index changes:
   * against the state the store held before the batch, or the same entity's earlier state in it.
   */
  public StoreBatch changelogBatch(List<ChangelogItem> items, EntityStore store) {
    Map<String, List<String>> keysByType = new LinkedHashMap<>();
    for (ChangelogItem item : items) {
      ChangelogItem.EntityState state = item.entityState();
      if (state != null) {
        keysByType.computeIfAbsent(state.type(), t -> new ArrayList<>()).add(state.key());
      }
    }
    // The latest state of each entity the batch holds a state of: first the store's, then each item's.
    Map<String, Map<String, StoredEntity>> latest = new HashMap<>();
    keysByType.forEach((type, keys) -> {
      List<String> distinct = keys.stream().distinct().toList();
      List<StoredEntity> stored = store.getAll(type, distinct);
      Map<String, StoredEntity> byKey = new HashMap<>();
      for (int i = 0; i < distinct.size(); i++) {
        byKey.put(distinct.get(i), stored.get(i));
      }
      latest.put(type, byKey);
    });
    StoreBatch batch = new StoreBatch();
    for (ChangelogItem item : items) {
      batch.putChangelogItem(item);
      ChangelogItem.EntityState state = item.entityState();
      if (state != null) {
        StoredEntity before = latest.get(state.type()).put(state.key(), state.entity());
        changed(batch, state.type(), state.key(), parsed(state.type(), before), parsed(state.type(), state.entity()));
      }
    }
    return batch;
  }

  /** The state to index; a type without declared indexes needs only to know that the entity exists. */
  private JsonNode parsed(String type, StoredEntity entity) {
    if (entity == null) {
      return null;
    }
    if (byType.getOrDefault(type, List.of()).isEmpty()) {
      return com.fasterxml.jackson.databind.node.MissingNode.getInstance();
    }
    try {
      return Envelopes.parse(entity.state());
    } catch (IOException e) {
      throw new IllegalStateException("the stored state of " + type + " is not JSON", e);
    }
  }
}
