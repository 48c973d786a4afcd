package io.kfold.store;

/**
 * The versions a write with an idempotency key appended to its entity, and when (epoch millis), so
 * that a retry of the write answers the same without appending again.
 */
public record IdempotentWrite(long firstVersion, long lastVersion, long recordedAt) {}
