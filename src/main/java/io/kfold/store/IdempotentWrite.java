package io.kfold.store;

/**
 * The versions a write with an idempotency key appended to its entity, and when (epoch millis), so
 * that a retry of the write answers the same without appending again; {@code lastOffset} is the
 * offset of its last event in the entity's events partition (the answer's position), or -1 in a
 * record stored before offsets were kept.
 */
public record IdempotentWrite(long firstVersion, long lastVersion, long recordedAt, long lastOffset) {

  public IdempotentWrite(long firstVersion, long lastVersion, long recordedAt) {
    this(firstVersion, lastVersion, recordedAt, -1);
  }
}
