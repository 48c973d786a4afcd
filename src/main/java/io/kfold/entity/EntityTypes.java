package io.kfold.entity;

import io.kfold.KfoldConfig;

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.LinkedHashMap;
import java.util.Map;

/** The entity types a node serves, by name. */
public final class EntityTypes {

  private final Map<String, EntityType> byName = new LinkedHashMap<>();
  /** Per type, its indexes: those its Java class declares, then those of the configuration. */
  private final Map<String, List<IndexDefinition>> indexesByName = new LinkedHashMap<>();

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
      types.indexesByName.put(type.name(), indexesOf(entityType, type.indexes()));
    }
    return types;
  }

  /** Both lists of indexes, checked: the names must differ. */
  private static List<IndexDefinition> indexesOf(EntityType type, List<IndexDefinition> configured) {
    List<IndexDefinition> all = new ArrayList<>(type.indexes() == null ? List.of() : type.indexes());
    all.addAll(configured);
    Set<String> names = new HashSet<>();
    for (IndexDefinition index : all) {
      if (index == null) {
        throw new IllegalArgumentException("type '" + type.name() + "': indexes() holds a null");
      }
      if (!names.add(index.name())) {
        throw new IllegalArgumentException("configuration: type '" + type.name() + "' declares the index '"
            + index.name() + "' twice (in its class and its configuration, or twice in one)");
      }
    }
    return List.copyOf(all);
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

  /** The indexes of a known type, none when it declares none. */
  public List<IndexDefinition> indexes(String type) {
    return indexesByName.getOrDefault(type, List.of());
  }

  public Collection<EntityType> all() {
    return byName.values();
  }
}
