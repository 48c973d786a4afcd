package io.kfold.store;

import java.nio.ByteBuffer;
import java.util.Arrays;

/**
 * One item of the store as a record of a type's compacted changelog topic: the key names the item
 * (its kind, then its key in the store), the value is the item as the store holds it. A node that
 * gets a partition without local state writes the changelog's items into its store as they are,
 * without folding anything, and so does a standby that keeps a partition warm.
 *
 * <p>The items are an entity's state, the events of its history, the idempotency keys of its writes,
 * and the partition's next offset: the marker that the items before it are complete up to that
 * offset of the events partition.
 */
public record ChangelogItem(byte[] key, byte[] value) {

  static final byte STATE = 'S';
  static final byte EVENT = 'E';
  static final byte IDEMPOTENT_WRITE = 'I';
  static final byte NEXT_OFFSET = 'O';

  public static ChangelogItem state(String type, String key, StoredEntity entity) {
    return new ChangelogItem(tagged(STATE, RocksEntityStore.entityKey(type, key)), RocksEntityStore.encodeEntity(entity));
  }

  public static ChangelogItem event(String type, String key, long version, byte[] event) {
    return new ChangelogItem(tagged(EVENT, RocksEntityStore.withLong(RocksEntityStore.entityKey(type, key), version)), event);
  }

  public static ChangelogItem idempotentWrite(String type, String key, String idempotencyKey, IdempotentWrite write) {
    return new ChangelogItem(tagged(IDEMPOTENT_WRITE, RocksEntityStore.idempotencyKey(type, key, idempotencyKey)),
        RocksEntityStore.encodeIdempotentWrite(write));
  }

  /** The marker: every item of the partition's entities up to {@code nextOffset} precedes it in the changelog. */
  public static ChangelogItem nextOffset(String eventsTopic, int partition, long nextOffset) {
    return new ChangelogItem(tagged(NEXT_OFFSET, RocksEntityStore.partitionKey(eventsTopic, partition)),
        ByteBuffer.allocate(8).putLong(nextOffset).array());
  }

  /** The state an item carries: an entity's latest, which the store writes as it is. */
  public record EntityState(String type, String key, StoredEntity entity) {}

  /** The entity state this item carries, or null when it is another kind of item. */
  public EntityState entityState() {
    if (key.length == 0 || key[0] != STATE || value == null) {
      return null;
    }
    String[] typeAndKey = RocksEntityStore.decodeEntityKey(key, 1);
    return new EntityState(typeAndKey[0], typeAndKey[1], RocksEntityStore.decodeEntity(value));
  }

  /** The offset a marker carries, or -1 when the item is no marker. */
  public long markedOffset() {
    return key.length > 0 && key[0] == NEXT_OFFSET && value != null && value.length == 8 ? ByteBuffer.wrap(value).getLong() : -1;
  }

  byte kind() {
    return key[0];
  }

  byte[] storeKey() {
    return Arrays.copyOfRange(key, 1, key.length);
  }

  private static byte[] tagged(byte kind, byte[] storeKey) {
    byte[] key = new byte[storeKey.length + 1];
    key[0] = kind;
    System.arraycopy(storeKey, 0, key, 1, storeKey.length);
    return key;
  }
}
