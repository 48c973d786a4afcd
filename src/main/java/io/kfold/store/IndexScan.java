package io.kfold.store;

/**
 * A scan of one index of a type, in (value, key) order: the entries whose value is in
 * {@code [from, to)} (either bound null for none) and that come after {@code after} (null: from the
 * first), at most {@code limit}. Values are bytes compared unsigned, as {@link StoreBatch#putIndexEntry} got them.
 *
 * @param withStates whether to read each entry's entity state too, from the same snapshot as the entries
 */
public record IndexScan(String type, String index, byte[] from, byte[] to, Position after, int limit,
                        boolean withStates) {

  /** Where an entry stands in its index: a scan goes on after it. */
  public record Position(byte[] value, String key) {}

  /** An entry found, with its entity's state when the scan asked for states (null if it has none). */
  public record Entry(byte[] value, String key, StoredEntity entity) {
    public Position position() {
      return new Position(value, key);
    }
  }

  /** Every entity of the type in key order (UTF-8 bytes), after {@code afterKey} (null: from the first). */
  public static IndexScan allEntities(String type, String afterKey, int limit, boolean withStates) {
    return new IndexScan(type, EntityStore.ALL_ENTITIES, null, null,
        afterKey == null ? null : new Position(new byte[0], afterKey), limit, withStates);
  }
}
