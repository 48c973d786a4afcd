#!/usr/bin/env bash
# kfold's load tests, each next to a baseline measured in the same run (see README.md).
#
#   load-tests/run.sh [fold]              fold throughput next to a plain Kafka consumer and Kafka Streams
#   load-tests/run.sh [fold] --many-keys  the same, then 1,000,000 events over 200,000 keys
#   load-tests/run.sh recovery            a node rebuilding its deleted store from the log
#   load-tests/run.sh http                GET state, event appends and commands over HTTP at several
#                                         concurrencies, next to a bare Vert.x server ("commands", its
#                                         earlier name, runs the same)
#   load-tests/run.sh effects             the http side-effect worker next to a plain WebClient loop
#   load-tests/run.sh query               index queries on 1,000,000 orders through 1 and 3 nodes, next to
#                                         GETs of one order, and the fold with the default indexes on and off
#   load-tests/run.sh views               the fold with the default views on and off, next to Kafka Streams
#                                         computing the customers view with groupBy().aggregate()
#   load-tests/run.sh failover            3 nodes (each its own JVM, default configuration), writers through one
#                                         of them: kill -9 of a node, SIGTERM of another, kill -9 and restart of the
#                                         broker; how long each entity's writes stalled, nothing lost or doubled
#
# fold options: --events N, --keys K[,K...], --rounds N (each input N times, with the medians of the
# ratios), --max-poll-records N (or KFOLD_FOLD_MAX_POLL_RECORDS),
# --streams at_least_once,exactly_once_v2 (the default) or none, --jfr (flight recording of each kfold
# run under load-tests/target/).
# recovery options: --events N, --keys K, --max-poll-records N.
# http options: --concurrencies 8,32,128, --workloads get,events,commands, --entities N,
# --events-per-entity N, --per-client N, --warmup S, --duration S, --rate-warmup S, --rate-duration S
# (0 skips the half-rate phases), --warmup-phase S (closed loops before the measured ones, 15),
# --if-match-duration S (0, the default, skips it),
# --jfr (flight recording of each kfold closed loop under load-tests/target/), --access-log (the node writes
# its access log, one line a request on stdout).
# effects options: --events N, --keys K, --in-flight N.
# query options: --entities N (orders, 1000000), --per-customer N (64), --limit N (50), --concurrencies 8,32,
# --nodes 1,3, --warmup S (2), --duration S (10), --warmup-phase S (10, per node count), --max-poll-records N,
# --no-fold-baseline (skips the fold without indexes), --jfr (flight recordings of both folds under load-tests/target/).
# views options: --orders N (200000), --streams exactly_once_v2 (the default), at_least_once or none,
# --max-poll-records N, --concurrencies 8,32 (the GETs of orders and rows), --warmup S (2), --duration S (10),
# --warmup-phase S (10), --jfr (flight recordings of both folds under load-tests/target/).
# failover options: --writers N (40), --warmup S (10), --after S (15: measured after every entity answered again),
# --broker-down S (8), --pause-ms MS (50, between a writer's acknowledged write and its next),
# --node-java-opts "..." (the nodes' JVM options; KFOLD_NODE_JAVA_OPTS by default).
# All: --no-build (reuse the last build). JAVA_OPTS replaces the benchmark JVM's heap settings,
# KFOLD_NODE_JAVA_OPTS those of the JVMs that run a kfold node (-Xmx384m, as the README advises).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
build=1
main=io.kfold.bench.FoldBenchmark
bench=fold
case "${1:-}" in
  fold) shift ;;
  # "commands" is the earlier name of the http benchmark, when it measured commands only.
  http|commands) main=io.kfold.bench.HttpBenchmark; bench=http; shift ;;
  effects) main=io.kfold.bench.EffectBenchmark; bench=effects; shift ;;
  recovery) main=io.kfold.bench.RecoveryBenchmark; bench=recovery; shift ;;
  query) main=io.kfold.bench.QueryBenchmark; bench=query; shift ;;
  views) main=io.kfold.bench.ViewBenchmark; bench=views; shift ;;
  failover) main=io.kfold.bench.FailoverBenchmark; bench=failover; shift ;;
esac
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
streams_classpath_file="$out/streams-classpath.txt"
hdr_jar="$out/lib/HdrHistogram-2.2.2.jar"

if [[ $build == 1 || ! -f "$classpath_file" || ! -f "$streams_classpath_file" || ! -f "$hdr_jar" \
      || ! -d target/classes ]]; then
  echo "building kfold ..."
  # compile is enough: it fills target/classes and copies the broker jars to target/kafka-broker.
  mvn -B -q -DskipTests compile
  # runtime scope: kfold's own dependencies, without the broker's (they stay in target/kafka-broker)
  # and without the test ones.
  mvn -B -q dependency:build-classpath -DincludeScope=runtime -Dmdep.outputFile="$classpath_file"
  # The latency histograms of the http benchmark; not one of kfold's dependencies.
  mvn -B -q dependency:copy -Dartifact=org.hdrhistogram:HdrHistogram:2.2.2 -DoutputDirectory="$out/lib"
  # The Kafka Streams baseline of the fold benchmark runs in a JVM of its own, on this classpath:
  # kafka-streams brings a rocksdbjni other than kfold's.
  mvn -B -q -f "$here/streams/pom.xml" dependency:build-classpath -Dmdep.outputFile="$streams_classpath_file"
fi
revision="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git status --porcelain --untracked-files=no -- src pom.xml conf 2>/dev/null)" ]]; then
  revision="$revision+uncommitted"
fi

# The code, the broker and kfold's store live here; whatever happens, nothing of it outlives the run.
work="$(mktemp -d "${TMPDIR:-/tmp}/kfold-$bench-bench.XXXXXX")"
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

# This run's own copy of kfold's classes, of the broker jars beside them (where LocalBroker looks for
# them) and of the compiled benchmark: a build or another benchmark run that starts meanwhile must not
# replace them under a running benchmark.
mkdir -p "$work/code/kfold" "$work/code/bench"
cp -r target/classes "$work/code/kfold/classes"
cp -r target/kafka-broker "$work/code/kfold/kafka-broker"
classpath="$work/code/kfold/classes:$(cat "$classpath_file"):$hdr_jar"
javac --release 17 -Xlint:all,-processing,-classfile -d "$work/code/bench" -cp "$classpath" \
  $(find "$here/src" -name '*.java')
if [[ $bench == fold || $bench == views ]]; then
  # The Streams apps, with the few benchmark classes they share (Input, ViewInput, Meter, Report) compiled again
  # from src/ against its own classpath.
  mkdir -p "$work/code/streams"
  streams_classpath="$(cat "$streams_classpath_file")"
  javac --release 17 -Xlint:all,-processing,-classfile -implicit:class -d "$work/code/streams" \
    -cp "$streams_classpath" -sourcepath "$here/src" $(find "$here/streams/src" -name '*.java')
fi

# kfold reads conf/kfold.yaml from the current directory if there is one, else the copy built into
# its classes. Running from load-tests/target makes it use the configuration it was built with,
# whatever the working copy holds by now.
cd "$out"
bench_args=()
if [[ $bench == fold ]]; then
  bench_args=(--jfr-dir "$out" --streams-classpath "$work/code/streams:$streams_classpath")
elif [[ $bench == views ]]; then
  bench_args=(--jfr-dir "$out" --streams-classpath "$work/code/streams:$streams_classpath")
elif [[ $bench == http || $bench == query ]]; then
  bench_args=(--jfr-dir "$out")
fi
# A node runs with the heap the README advises: in JVMs of its own, and in the benchmark JVM itself
# where the benchmark runs its node there (http).
node_java_opts="${KFOLD_NODE_JAVA_OPTS:--Xmx384m}"
bench_java_opts="-Xms1g -Xmx2g"
if [[ $bench == http ]]; then
  bench_java_opts="$node_java_opts"
fi
java ${JAVA_OPTS:-$bench_java_opts} \
  -Dkfold.bench.nodeJavaOptions="$node_java_opts" \
  -Dlog4j2.configurationFile="$here/log4j2.properties" \
  -cp "$work/code/bench:$classpath" \
  "$main" \
  --work-dir "$work" --results-dir "$here/results" --revision "$revision" \
  ${bench_args[@]+"${bench_args[@]}"} \
  ${args[@]+"${args[@]}"}
