package io.kfold.store;

/** An entity's state as stored: its version, the command of its last event, and the state's JSON. */
public record StoredEntity(long version, String lastCommandId, byte[] state) {}
