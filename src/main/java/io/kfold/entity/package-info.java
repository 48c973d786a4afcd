/**
 * What an application writes in Java for kfold: entity types ({@link io.kfold.entity.EntityType}), their commands
 * and events, indexes and views, and the exceptions that carry an HTTP status.
 */
package io.kfold.entity;
