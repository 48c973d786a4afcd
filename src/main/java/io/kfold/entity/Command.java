package io.kfold.entity;

import com.fasterxml.jackson.databind.JsonNode;

/** A request to change an entity, which its type's {@code decide} turns into events or rejects. */
public record Command(String type, JsonNode payload) {}
