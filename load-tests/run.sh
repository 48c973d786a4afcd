#!/usr/bin/env bash
# Fold throughput of kfold next to a plain Kafka consumer reading the same log (see README.md).
#
#   load-tests/run.sh                 1,000,000 events over 10,000 keys (about 1-2 minutes)
#   load-tests/run.sh --many-keys     the same, then 1,000,000 events over 200,000 keys
#
# Other options: --events N, --keys K[,K...], --max-poll-records N (or KFOLD_FOLD_MAX_POLL_RECORDS),
# --jfr (flight recording of each kfold run under load-tests/target/), --no-build (reuse the last
# build). JAVA_OPTS replaces the benchmark JVM's heap settings.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
build=1
args=()
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) args+=("$arg") ;;
  esac
done

cd "$root"
out="$here/target"
classpath_file="$out/classpath.txt"

if [[ $build == 1 || ! -f "$classpath_file" || ! -d target/classes ]]; then
  echo "building kfold ..."
  # compile is enough: it fills target/classes and copies the broker jars to target/kafka-broker.
  mvn -B -q -DskipTests compile
  # runtime scope: kfold's own dependencies, without the broker's (they stay in target/kafka-broker).
  mvn -B -q dependency:build-classpath -Dmdep.includeScope=runtime -Dmdep.outputFile="$classpath_file"
fi
classpath="$root/target/classes:$(cat "$classpath_file")"

rm -rf "$out/classes"
mkdir -p "$out/classes"
javac --release 17 -Xlint:all,-processing,-classfile -d "$out/classes" -cp "$classpath" \
  $(find "$here/src" -name '*.java')

revision="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git status --porcelain --untracked-files=no -- src pom.xml conf 2>/dev/null)" ]]; then
  revision="$revision+uncommitted"
fi

# The broker and kfold's store live here; whatever happens, nothing of it outlives the run.
work="$(mktemp -d "${TMPDIR:-/tmp}/kfold-fold-bench.XXXXXX")"
cleanup() {
  local pid_file="$work/broker/broker.pid"
  if [[ -f "$pid_file" ]]; then
    local pid
    pid="$(cat "$pid_file")"
    # Only our own broker: its command line names our work folder.
    if tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "kafka.Kafka.*$work\|$work.*kafka.Kafka"; then
      echo "stopping leftover benchmark broker $pid"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# kfold reads conf/kfold.yaml from the current directory if there is one, else the copy built into
# target/classes. Running from load-tests/target makes it use the configuration it was built with,
# whatever the working copy holds by now.
cd "$out"
java ${JAVA_OPTS:--Xms1g -Xmx2g} \
  -Dlog4j2.configurationFile="$here/log4j2.properties" \
  -cp "$out/classes:$classpath" \
  io.kfold.bench.FoldBenchmark \
  --work-dir "$work" --results-dir "$here/results" --jfr-dir "$out" --revision "$revision" \
  ${args[@]+"${args[@]}"}
