package io.kfold.entity;

import java.util.Map;

/** The request itself is wrong (a missing field, an invalid id, a value out of range): 400. */
public class BadRequestException extends KfoldException {
  public BadRequestException(String detail) {
    super(400, "Bad request", detail, Map.of());
  }
}
