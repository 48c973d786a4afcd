package io.kfold.query;

import io.kfold.entity.IndexDefinition;

import java.util.List;

/** The indexes of the "items" type of {@link IndexModel}, as its configuration declares them. */
final class IndexFoldTestTypes {

  static final List<IndexDefinition> INDEXES = List.of(IndexDefinition.of("tag", "/tags"),
      new IndexDefinition("n", "/n", IndexDefinition.Kind.NUMBER), IndexDefinition.of("city", "/address/city"));

  private IndexFoldTestTypes() {}
}
