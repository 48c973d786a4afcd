/**
 * kfold's API for applications that embed it: {@link io.kfold.KfoldConfig} and {@link io.kfold.KfoldNode}, with
 * the entity-type API in {@code io.kfold.entity}. Every other package is internal to kfold.
 */
package io.kfold;
