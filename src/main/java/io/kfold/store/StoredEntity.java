package io.kfold.store;

/**
 * An entity's state as stored: its version, the offset in its events partition of the last event
 * applied to it, the command of that event, and the state's JSON. The offset tells a fold that
 * resumes from an earlier offset of the partition (after a restore from the changelog) which of
 * the entity's events it has applied already, versioned or not.
 */
public record StoredEntity(long version, long sourceOffset, String lastCommandId, byte[] state) {}
