package io.kfold;

import io.kfold.entity.EntityType;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.lang.reflect.Constructor;
import java.lang.reflect.Executable;
import java.lang.reflect.Field;
import java.lang.reflect.GenericArrayType;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.lang.reflect.TypeVariable;
import java.lang.reflect.WildcardType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The public API is io.kfold and io.kfold.entity, and it stands on its own: what an application sees
 * of it names only those packages, the JDK, Vert.x core, Jackson's databind and Micrometer's
 * Prometheus registry (which an application gives the node to see its Vert.x's metrics on /metrics
 * too). A public member that names an internal class would make that class part of the API, with
 * every change to it a break.
 */
class PublicApiTest {

  private static final List<String> PUBLIC_PACKAGES = List.of("io.kfold", "io.kfold.entity");
  private static final List<String> ALLOWED_PREFIXES = List.of("java.", "io.vertx.core.", "com.fasterxml.jackson.databind.",
      "io.micrometer.prometheusmetrics.");

  @Test
  @DisplayName("every public signature of io.kfold and io.kfold.entity names only allowed types")
  void publicSignaturesNameOnlyAllowedTypes() throws Exception {
    List<String> offences = new ArrayList<>();
    Set<String> checked = new TreeSet<>();
    for (Class<?> type : topLevelPublicClasses()) {
      check(type, checked, offences);
    }
    // Not vacuous: the classes that make the API were found and checked.
    assertThat(checked).contains(KfoldNode.class.getName(), KfoldNode.Options.class.getName(),
        KfoldConfig.class.getName(), EntityType.class.getName());
    assertThat(offences).as("public members that expose internal types").isEmpty();
  }

  /** The public top-level classes compiled into the public packages (main classes only, not tests). */
  private static List<Class<?>> topLevelPublicClasses() throws Exception {
    Path classes = Path.of(KfoldNode.class.getProtectionDomain().getCodeSource().getLocation().toURI());
    List<Class<?>> found = new ArrayList<>();
    for (String pkg : PUBLIC_PACKAGES) {
      try (Stream<Path> files = Files.list(classes.resolve(pkg.replace('.', '/')))) {
        for (Path file : files.toList()) {
          String name = file.getFileName().toString();
          if (!name.endsWith(".class") || name.contains("$") || name.contains("-")) {
            continue;  // nested classes are reached through their outer class; package-info is no class
          }
          Class<?> type = Class.forName(pkg + "." + name.substring(0, name.length() - ".class".length()), false,
              PublicApiTest.class.getClassLoader());
          if (Modifier.isPublic(type.getModifiers())) {
            found.add(type);
          }
        }
      }
    }
    return found;
  }

  private static void check(Class<?> type, Set<String> checked, List<String> offences) {
    checked.add(type.getName());
    String where = type.getName();
    for (TypeVariable<?> variable : type.getTypeParameters()) {
      names(variable, where + " type parameter " + variable.getName(), offences);
    }
    if (type.getGenericSuperclass() != null) {
      names(type.getGenericSuperclass(), where + " extends", offences);
    }
    for (Type implemented : type.getGenericInterfaces()) {
      names(implemented, where + " implements", offences);
    }
    for (Field field : type.getDeclaredFields()) {
      if (visible(field.getModifiers()) && !field.isSynthetic()) {
        names(field.getGenericType(), where + "." + field.getName(), offences);
      }
    }
    for (Constructor<?> constructor : type.getDeclaredConstructors()) {
      if (visible(constructor.getModifiers()) && !constructor.isSynthetic()) {
        signature(constructor, where + ".<init>", offences);
      }
    }
    for (Method method : type.getDeclaredMethods()) {
      if (visible(method.getModifiers()) && !method.isSynthetic() && !method.isBridge()) {
        names(method.getGenericReturnType(), where + "." + method.getName() + "() returns", offences);
        signature(method, where + "." + method.getName() + "()", offences);
      }
    }
    for (Class<?> nested : type.getDeclaredClasses()) {
      if (visible(nested.getModifiers())) {
        check(nested, checked, offences);
      }
    }
  }

  private static void signature(Executable executable, String where, List<String> offences) {
    for (TypeVariable<?> variable : executable.getTypeParameters()) {
      names(variable, where + " type parameter " + variable.getName(), offences);
    }
    for (Type parameter : executable.getGenericParameterTypes()) {
      names(parameter, where + " takes", offences);
    }
    for (Type thrown : executable.getGenericExceptionTypes()) {
      names(thrown, where + " throws", offences);
    }
  }

  private static boolean visible(int modifiers) {
    return Modifier.isPublic(modifiers) || Modifier.isProtected(modifiers);
  }

  /** Adds an offence for each class that {@code type} names (itself, its arguments, bounds) outside the allowed ones. */
  private static void names(Type type, String where, List<String> offences) {
    names(type, where, offences, new HashSet<>());
  }

  private static void names(Type type, String where, List<String> offences, Set<Type> seen) {
    if (!seen.add(type)) {
      return;  // a recursive bound, such as <E extends Enum<E>>
    }
    if (type instanceof Class<?> raw) {
      Class<?> element = raw;
      while (element.isArray()) {
        element = element.getComponentType();
      }
      if (!element.isPrimitive() && !allowed(element)) {
        offences.add(where + " " + element.getName());
      }
    } else if (type instanceof ParameterizedType parameterized) {
      names(parameterized.getRawType(), where, offences, seen);
      for (Type argument : parameterized.getActualTypeArguments()) {
        names(argument, where, offences, seen);
      }
    } else if (type instanceof GenericArrayType array) {
      names(array.getGenericComponentType(), where, offences, seen);
    } else if (type instanceof WildcardType wildcard) {
      for (Type bound : wildcard.getUpperBounds()) {
        names(bound, where, offences, seen);
      }
      for (Type bound : wildcard.getLowerBounds()) {
        names(bound, where, offences, seen);
      }
    } else if (type instanceof TypeVariable<?> variable) {
      for (Type bound : variable.getBounds()) {
        names(bound, where, offences, seen);
      }
    }
  }

  private static boolean allowed(Class<?> type) {
    String pkg = type.getPackageName();
    return PUBLIC_PACKAGES.contains(pkg) || ALLOWED_PREFIXES.stream().anyMatch(prefix -> (pkg + ".").startsWith(prefix));
  }
}
