package io.kfold.entity;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * The folded state of one entity.
 *
 * @param version       the version of the last applied event; 0 when the entity has none
 * @param lastCommandId the command of the last applied event, so the fold can keep a command's
 *                      events together (see {@code Fold})
 */
public record EntityState(String key, long version, String lastCommandId, JsonNode state) {}
