#!/bin/sh
# Starts kfold in its container with its memory sized from the container's limit:
#   the heap      HEAP_PERCENT (40) % of the limit  (-XX:MaxRAMPercentage)
#   the store     STORE_PERCENT (25) % of the limit (KFOLD_STORE_MEMORY_MB: RocksDB's block cache,
#                 index blocks and memtables, outside the heap)
#   the rest      (35 %) for the JVM's own: classes, compiled code, threads, network buffers
# KFOLD_STORE_MEMORY_MB, or -Xmx in JAVA_OPTS, set by you wins. Without a limit the defaults of the
# README's "Memory" apply: -Xmx384m and a 256 MiB store. JAVA_OPTS go to java as they are.
set -eu

limit_bytes=""
if [ -r /sys/fs/cgroup/memory.max ]; then
  limit_bytes=$(cat /sys/fs/cgroup/memory.max)                      # cgroup v2; "max": none
elif [ -r /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
  limit_bytes=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)    # cgroup v1; none is a huge number
fi
case "$limit_bytes" in
  ''|max|*[!0-9]*) limit_mb="" ;;
  *) limit_mb=$((limit_bytes / 1048576)) ;;
esac
# v1 says "no limit" with a number near 2^63: take anything past 1 TiB for none.
if [ -n "$limit_mb" ] && [ "$limit_mb" -gt 1048576 ]; then
  limit_mb=""
fi

# One line on what was chosen; with KFOLD_LOG_FORMAT=json as JSON too, like kfold's own lines after it.
say() {
  if [ "${KFOLD_LOG_FORMAT:-text}" = json ]; then
    printf '{"@timestamp":"%s","log.level":"INFO","log.logger":"entrypoint","message":"%s"}\n' \
      "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" "$1"
  else
    echo "$1"
  fi
}

heap_percent=${HEAP_PERCENT:-40}
store_percent=${STORE_PERCENT:-25}
if [ -n "$limit_mb" ]; then
  heap="-XX:MaxRAMPercentage=$heap_percent"
  if [ -z "${KFOLD_STORE_MEMORY_MB:-}" ]; then
    store_mb=$((limit_mb * store_percent / 100))
    [ "$store_mb" -lt 16 ] && store_mb=16                          # store.memoryMb's least
    KFOLD_STORE_MEMORY_MB=$store_mb
    export KFOLD_STORE_MEMORY_MB
  fi
  say "kfold image: memory limit $limit_mb MiB: heap $heap_percent %, store ${KFOLD_STORE_MEMORY_MB} MiB"
else
  heap="-Xmx384m"
  say "kfold image: no memory limit: heap 384 MiB, store ${KFOLD_STORE_MEMORY_MB:-256} MiB"
fi

# exec: java replaces this shell, so signals reach the JVM. JAVA_OPTS last: a -Xmx there wins.
# shellcheck disable=SC2086
exec java $heap ${JAVA_OPTS:-} -jar /opt/kfold/kfold.jar "$@"
