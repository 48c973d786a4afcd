package io.kfold.entity;

import com.fasterxml.jackson.databind.JsonNode;

/** An event decided or sent by a caller, before kfold gives it an envelope. */
public record NewEvent(String type, JsonNode payload) {}
