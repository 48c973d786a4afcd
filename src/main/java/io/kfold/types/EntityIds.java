package io.kfold.types;

import io.kfold.entity.KfoldException;

import java.util.regex.Pattern;

/** Entity ids: 1 to 128 characters from {@code A-Z a-z 0-9 . _ ~ : @ -}, starting with a letter or digit. */
public final class EntityIds {

  private static final Pattern VALID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._~:@-]{0,127}");

  private EntityIds() {}

  /** The id, or a 400 {@link KfoldException} that says what a valid one looks like. */
  public static String check(String id) {
    if (id == null || !VALID.matcher(id).matches()) {
      throw KfoldException.badRequest("entity id '" + id + "' is invalid: use 1 to 128 letters, digits and . _ ~ : @ -,"
          + " starting with a letter or digit");
    }
    return id;
  }
}
