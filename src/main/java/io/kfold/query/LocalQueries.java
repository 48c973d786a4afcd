package io.kfold.query;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.util.ByteArrayBuilder;
import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.types.Envelopes;
import io.kfold.store.EntityStore;
import io.kfold.store.IndexScan;
import io.kfold.store.StoredEntity;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.Comparator;
import java.util.List;
import java.util.function.Predicate;

/**
 * Answers queries from this node's store, over the entities it holds. Each page is read from one
 * store snapshot per scan, so an entity's entry and state agree; walking all pages returns each
 * entity that matched and did not change meanwhile exactly once, because a page begins strictly
 * after the (value, key) where the previous one ended.
 *
 * <p>Blocks on the store: call it from a worker thread.
 */
public final class LocalQueries {

  /** One entity of an answer; {@code state} (JSON) is null when the query asked for keys only. */
  public record Item(String key, long version, byte[] state, IndexScan.Position position) {}

  /**
   * A page: its items in (value, key) order, and the cursor of the next page, null when this was the last.
   * The order is the store's: values as unsigned bytes, then keys as UTF-8 bytes.
   */
  public record Page(List<Item> items, String next) {

    /** The order of positions in an index, as the store keeps its entries. */
    public static final Comparator<IndexScan.Position> ORDER = (a, b) -> {
      int byValue = Arrays.compareUnsigned(a.value(), b.value());
      return byValue != 0 ? byValue : Arrays.compareUnsigned(a.key().getBytes(StandardCharsets.UTF_8),
          b.key().getBytes(StandardCharsets.UTF_8));
    };

    /** {@code {"items": [{"key", "version", "state"}…], "next": "<cursor>" | null}}; keys only: {@code [{"key"}…]}. */
    public byte[] toJson() {
      return toJson(false);
    }

    /**
     * As {@link #toJson()}; with {@code positions}, each item also has {@code at}, its value in the
     * scanned index (base64url), so that a node merging the pages of several nodes can order them.
     */
    public byte[] toJson(boolean positions) {
      ByteArrayBuilder bytes = new ByteArrayBuilder(256 + items.size() * 128);
      try (JsonGenerator out = Envelopes.JSON.createGenerator(bytes)) {
        out.writeStartObject();
        out.writeArrayFieldStart("items");
        for (Item item : items) {
          out.writeStartObject();
          out.writeStringField("key", item.key());
          if (item.state() != null) {
            out.writeNumberField("version", item.version());
            out.writeFieldName("state");
            out.writeRawValue(new String(item.state(), StandardCharsets.UTF_8));
          }
          if (positions) {
            out.writeStringField("at", BASE64.encodeToString(item.position().value()));
          }
          out.writeEndObject();
        }
        out.writeEndArray();
        out.writeStringField("next", next);
        out.writeEndObject();
      } catch (IOException e) {
        throw new IllegalStateException("cannot encode a page", e);
      }
      return bytes.toByteArray();
    }

    /** The page another node answered, written by {@code toJson(true)}. */
    public static Page parse(byte[] json) throws IOException {
      JsonNode page = Envelopes.parse(json);
      if (page == null || !page.path("items").isArray()) {
        throw new IOException("not a page: no items");
      }
      List<Item> items = new ArrayList<>(page.get("items").size());
      for (JsonNode item : page.get("items")) {
        if (!item.path("key").isTextual() || !item.path("at").isTextual()) {
          throw new IOException("not a page: an item without key or at");
        }
        String key = item.get("key").textValue();
        byte[] value = Base64.getUrlDecoder().decode(item.get("at").textValue());
        items.add(new Item(key, item.path("version").asLong(),
            item.has("state") ? Envelopes.toBytes(item.get("state")) : null, new IndexScan.Position(value, key)));
      }
      return new Page(items, page.path("next").isTextual() ? page.get("next").textValue() : null);
    }

    /**
     * The page of a query over several disjoint sets of entities, from each set's page of the same
     * query: every set answered its best {@code limit} items, so the best {@code limit} of them all
     * are among them, and a set that had more (its page has a next) has nothing before the last of
     * those. The next page begins after the last item, in every set.
     */
    public static Page merge(List<Page> pages, int limit, String index) {
      List<Item> all = new ArrayList<>();
      pages.forEach(page -> all.addAll(page.items()));
      all.sort(Comparator.comparing(Item::position, ORDER));
      boolean more = all.size() > limit || pages.stream().anyMatch(page -> page.next() != null);
      List<Item> items = List.copyOf(all.subList(0, Math.min(limit, all.size())));
      return new Page(items, more && !items.isEmpty()
          ? Query.cursor(index, items.get(items.size() - 1).position()) : null);
    }
  }

  private static final Base64.Encoder BASE64 = Base64.getUrlEncoder().withoutPadding();

  private final EntityStore store;

  public LocalQueries(EntityStore store) {
    this.store = store;
  }

  /**
   * The page of {@code query} over the entities whose key {@code holds} accepts (those of the
   * partitions this node answers for: its store may also hold copies of others, kept warm for
   * failover or left from before a rebalance). Fails with 503 while the scanned index is being built.
   */
  public Page run(Query query, Predicate<String> holds) {
    return run(query, holds, null, entity -> true);
  }

  /**
   * As {@link #run(Query, Predicate)}, for a list of every entity ({@code query} scans none) whose
   * key starts with {@code keyPrefix} (null: any) and whose stored entity {@code answers} accepts:
   * the scan ends at the first key past the prefix's keys, and an entity that does not answer is
   * passed over like one of another partition, so each page still holds {@code limit} entities
   * that answer when so many follow, and a cursor only when one more does.
   */
  public Page run(Query query, Predicate<String> holds, String keyPrefix, Predicate<StoredEntity> answers) {
    // Only the scanned index's entries must be complete: the other conditions are checked on the states.
    IndexBuilds.requireBuilt(store, query.type(), query.scannedIndex());
    Query.Condition scanned = query.scanned();
    // States are read to answer them, to check the other conditions, and, for a range, to answer an
    // entity once: an array value puts it at several places of the range, and it is answered at the
    // first of them only.
    boolean withStates = !query.keysOnly() || !query.filters().isEmpty() || (scanned != null && !scanned.equality());
    int chunk = query.limit() + 1;  // one more than a page: whether another page follows
    List<Item> items = new ArrayList<>(chunk);
    IndexScan.Position position = query.after();
    boolean pastPrefix = false;
    while (items.size() < chunk && !pastPrefix) {
      List<IndexScan.Entry> entries = store.scanIndex(new IndexScan(query.type(), query.scannedIndex(),
          scanned == null ? null : scanned.from(), scanned == null ? null : scanned.to(), position, chunk, withStates));
      for (IndexScan.Entry entry : entries) {
        position = entry.position();
        if (keyPrefix != null && !entry.key().startsWith(keyPrefix)) {
          if (entry.key().compareTo(keyPrefix) > 0) {
            pastPrefix = true;  // keys come in order: none after this one starts with the prefix
            break;
          }
          continue;
        }
        if (holds.test(entry.key()) && (!withStates || matches(query, entry)) && answers.test(entry.entity())) {
          items.add(new Item(entry.key(), withStates ? entry.entity().version() : 0,
              query.keysOnly() ? null : entry.entity().state(), entry.position()));
          if (items.size() == chunk) {
            break;
          }
        }
      }
      if (entries.size() < chunk) {
        break;  // the scan reached the end of its range
      }
    }
    if (items.size() <= query.limit()) {
      return new Page(items, null);
    }
    List<Item> page = List.copyOf(items.subList(0, query.limit()));
    return new Page(page, Query.cursor(query.scannedIndex(), page.get(page.size() - 1).position()));
  }

  /** Whether the entity of an entry answers: its other conditions hold, and a range meets it here first. */
  private static boolean matches(Query query, IndexScan.Entry entry) {
    if (entry.entity() == null) {
      return false;  // cannot be: entries and states are written together and read from one snapshot
    }
    if (query.filters().isEmpty() && (query.scanned() == null || query.scanned().equality())) {
      return true;
    }
    JsonNode state;
    try {
      state = Envelopes.parse(entry.entity().state());
    } catch (IOException e) {
      throw new IllegalStateException("the stored state of " + query.type() + " '" + entry.key() + "' is not JSON", e);
    }
    Query.Condition scanned = query.scanned();
    if (scanned != null && !scanned.equality()) {
      byte[] first = IndexValues.of(state, scanned.index()).stream().filter(scanned::holds).findFirst().orElse(null);
      if (first == null || !Arrays.equals(first, entry.value())) {
        return false;
      }
    }
    for (Query.Condition filter : query.filters()) {
      if (IndexValues.of(state, filter.index()).stream().noneMatch(filter::holds)) {
        return false;
      }
    }
    return true;
  }
}
