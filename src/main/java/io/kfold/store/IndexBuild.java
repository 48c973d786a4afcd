package io.kfold.store;

/**
 * What the entries of one index of a type were built from, and how far their build from the stored
 * states has got. Kept in the store beside the entries, and written in the same batch as each chunk
 * of entries a build adds, so that a build resumes after a crash exactly where it stopped, and a
 * node that starts with another definition of the index knows that its entries no longer fit.
 *
 * @param definition the fingerprint of the definition the entries follow (its name, path and kind)
 * @param ready      whether every stored state has its entries; while not, queries of the index wait
 * @param builtUpTo  the key of the last entity the build has indexed, in {@link EntityStore#STATE_ORDER};
 *                   null before the first
 * @param built      how many entities the build has indexed
 * @param entities   how many entities the type had when the build began
 */
public record IndexBuild(String type, String index, String definition, boolean ready, String builtUpTo, long built,
                         long entities) {

  /** A build about to begin over {@code entities} entities. */
  public static IndexBuild begin(String type, String index, String definition, long entities) {
    return new IndexBuild(type, index, definition, false, null, 0, entities);
  }

  /** Whether the build has indexed the entity of this key already (the fold keeps its entries since). */
  public boolean covers(String key) {
    return ready || (builtUpTo != null && EntityStore.STATE_ORDER.compare(key, builtUpTo) <= 0);
  }

  /** The same build, after it indexed {@code more} entities, up to {@code key}. */
  public IndexBuild advanced(String key, long more) {
    return new IndexBuild(type, index, definition, false, key, built + more, entities);
  }

  public IndexBuild completed() {
    return new IndexBuild(type, index, definition, true, builtUpTo, built, entities);
  }
}
