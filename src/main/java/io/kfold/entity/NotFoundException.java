package io.kfold.entity;

import java.util.Map;

/** No such entity, view row, type or view: 404. */
public class NotFoundException extends KfoldException {
  public NotFoundException(String detail) {
    super(404, "Not found", detail, Map.of());
  }
}
