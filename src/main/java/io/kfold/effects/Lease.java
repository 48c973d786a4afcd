package io.kfold.effects;

import org.apache.kafka.common.TopicPartition;

/**
 * A changes partition as one assignment gave it to a worker. A partition taken away and given back,
 * or held across a restart of the worker's loop, gets a new number: what was read, started or
 * committed under the old one is told apart from what happens under the new one.
 */
record Lease(TopicPartition partition, long number) {}
