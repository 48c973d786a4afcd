package io.kfold.types;

import io.kfold.config.NodeConfig;
import io.kfold.entity.EntityType;
import io.kfold.entity.IndexDefinition;
import io.kfold.entity.KfoldException;
import io.kfold.entity.MergeEntityType;
import io.kfold.plugin.Plugins;
import io.kfold.entity.ViewDefinition;
import io.kfold.view.ViewDefinitions;
import io.kfold.view.ViewType;

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The entity types a node serves, by name, and the views it keeps. Each view is folded as an
 * internal type of its own ({@link ViewType}), which the fold sees ({@link #folded}) but nothing
 * that serves user types does: {@link #get} and {@link #all} know only the user types.
 */
public final class EntityTypes {

  private final Map<String, EntityType> byName = new LinkedHashMap<>();
  private final Map<String, ViewType> viewsByName = new LinkedHashMap<>();
  /** Per type, its indexes: those its Java class declares, then those of the configuration. */
  private final Map<String, List<IndexDefinition>> indexesByName = new LinkedHashMap<>();
  /** Per type, where it was declared: for the message when a name is taken twice. */
  private final Map<String, String> declaredBy = new LinkedHashMap<>();

  private EntityTypes() {}

  public static EntityTypes from(NodeConfig config) {
    return from(config, List.of());
  }

  /** The configuration's types and views, and {@code views} written in Java over them. */
  public static EntityTypes from(NodeConfig config, List<ViewDefinition> views) {
    return from(config, Plugins.none(), views);
  }

  /**
   * The same, the classes that the configuration names loaded through {@code plugins}, with the
   * types that plugin jars list for {@link java.util.ServiceLoader} added after the configuration's.
   */
  public static EntityTypes from(NodeConfig config, Plugins plugins, List<ViewDefinition> views) {
    return from(config, plugins, List.of(), views);
  }

  /**
   * The same, with {@code given}: types written in Java and given in code, added last. The names
   * that views and workers use are checked once all types are known, so that they may name a type
   * of a plugin jar or one given in code.
   */
  public static EntityTypes from(NodeConfig config, Plugins plugins, List<EntityType> given, List<ViewDefinition> views) {
    EntityTypes types = new EntityTypes();
    for (NodeConfig.TypeConfig type : config.types()) {
      EntityType entityType = type.fold().equals("merge") ? new MergeEntityType(type.name())
          : plugins.create(type.className(), EntityType.class, "configuration: type '" + type.name() + "'");
      if (!entityType.name().equals(type.name())) {
        throw new IllegalArgumentException("configuration: type '" + type.name() + "' names class "
            + type.className() + " whose name() is '" + entityType.name() + "'");
      }
      if (types.byName.put(type.name(), entityType) != null) {
        throw new IllegalArgumentException("configuration: type '" + type.name() + "' is declared twice");
      }
      types.indexesByName.put(type.name(), indexesOf(entityType, type.indexes()));
      types.declaredBy.put(type.name(), type.className().isEmpty()
          ? "the configuration (fold: " + type.fold() + ")" : "the configuration (class " + type.className() + ")");
    }
    types.addServices(config, plugins);
    for (EntityType type : given) {
      types.add(type, "code (class " + type.getClass().getName() + ")");
    }
    config.checkTypeNames(types.byName.keySet());
    // The configuration's views (declared, or Java classes it names), then those given in code;
    // ViewDefinitions checks them all: valid unique names, known types.
    List<ViewDefinition> all = new ArrayList<>(ViewDefinitions.configured(config, plugins));
    all.addAll(views);
    for (ViewDefinition view : ViewDefinitions.of(all, types.byName.keySet()).all()) {
      types.viewsByName.put(view.name(), new ViewType(view, config.kafka().partitions()));
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

  /**
   * The types plugin jars list. One the configuration also names by its class is already there (the
   * configuration adds its indexes); any other type with a name already taken is an error, since
   * two folds of one topic would disagree.
   */
  private void addServices(NodeConfig config, Plugins plugins) {
    for (Plugins.Service<EntityType> service : plugins.services(EntityType.class)) {
      EntityType type = service.instance();
      String name = type.name();
      EntityType known = byName.get(name);
      if (known != null && known.getClass().getName().equals(service.className())
          && config.types().stream().anyMatch(t -> t.name().equals(name))) {
        continue;
      }
      add(type, service.className() + " listed by " + service.jar());
    }
  }

  /** A type that no configuration entry declares, {@code by} saying where it comes from in messages. */
  private void add(EntityType type, String by) {
    String name = type.name();
    if (name == null || !NodeConfig.TYPE_NAME.matcher(name).matches()) {
      throw new IllegalArgumentException("types: " + by + ": its name() '" + name + "' is not a type name:"
          + " lower-case letters, digits and '-', starting with a letter");
    }
    if (byName.containsKey(name)) {
      throw new IllegalArgumentException("types: the type '" + name + "' is declared twice: by "
          + declaredBy.get(name) + " and by " + by);
    }
    byName.put(name, type);
    declaredBy.put(name, by);
    indexesByName.put(name, indexesOf(type, List.of()));
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

  /** The user types. */
  public Collection<EntityType> all() {
    return byName.values();
  }

  /** What the fold folds: the user types, then the views' types. */
  public List<EntityType> folded() {
    List<EntityType> folded = new ArrayList<>(byName.values());
    folded.addAll(viewsByName.values());
    return folded;
  }

  /** The views, in their declared order. */
  public Collection<ViewType> views() {
    return viewsByName.values();
  }

  /** The view's folded type, or a 404 {@link KfoldException} naming the known views. */
  public ViewType view(String name) {
    ViewType view = viewsByName.get(name);
    if (view == null) {
      throw KfoldException.notFound("unknown view '" + name + "'; this node keeps " + viewsByName.keySet());
    }
    return view;
  }
}
