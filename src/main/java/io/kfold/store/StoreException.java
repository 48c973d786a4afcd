package io.kfold.store;

/** A failure of the local store, naming the store and what it was doing. */
public class StoreException extends RuntimeException {
  public StoreException(String message, Throwable cause) {
    super(message, cause);
  }
}
