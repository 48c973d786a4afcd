package io.kfold.effects;

/**
 * One entity, named by its type and id: ids are unique only within a type, and a worker on several
 * types sees the same id in each (an order and the shipment it asks for share theirs).
 */
record EntityRef(String type, String key) {

  static EntityRef of(Change change) {
    return new EntityRef(change.entity(), change.key());
  }

  /** {@code <type>/<key>}: the key of its records in a worker's dead-letter topic; type names hold no '/'. */
  @Override
  public String toString() {
    return type + "/" + key;
  }
}
