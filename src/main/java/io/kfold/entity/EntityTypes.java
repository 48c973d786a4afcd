package io.kfold.entity;

import io.kfold.KfoldConfig;

import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.Map;

/** The entity types a node serves, by name. */
public final class EntityTypes {

  private final Map<String, EntityType> byName = new LinkedHashMap<>();

  private EntityTypes() {}

  public static EntityTypes from(KfoldConfig config) {
    EntityTypes types = new EntityTypes();
    for (KfoldConfig.TypeConfig type : config.types()) {
      EntityType entityType = type.fold().equals("merge") ? new MergeEntityType(type.name()) : instantiate(type);
      if (!entityType.name().equals(type.name())) {
        throw new IllegalArgumentException("configuration: type '" + type.name() + "' names class "
            + type.className() + " whose name() is '" + entityType.name() + "'");
      }
      if (types.byName.put(type.name(), entityType) != null) {
        throw new IllegalArgumentException("configuration: type '" + type.name() + "' is declared twice");
      }
    }
    return types;
  }

  private static EntityType instantiate(KfoldConfig.TypeConfig type) {
    try {
      return (EntityType) Class.forName(type.className()).getDeclaredConstructor().newInstance();
    } catch (ReflectiveOperationException | ClassCastException e) {
      throw new IllegalArgumentException("configuration: type '" + type.name() + "': cannot create "
          + type.className() + " as an EntityType: " + e, e);
    }
  }

  /** The type, or a 404 {@link KfoldException} naming the known ones. */
  public EntityType get(String name) {
    EntityType type = byName.get(name);
    if (type == null) {
      throw KfoldException.notFound("unknown entity type '" + name + "'; this node serves " + byName.keySet());
    }
    return type;
  }

  public Collection<EntityType> all() {
    return byName.values();
  }
}
