/** Internal to kfold: no compatibility promise; the API is io.kfold and io.kfold.entity. */
package io.kfold.query;
