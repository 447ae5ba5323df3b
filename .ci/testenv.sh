#!/usr/bin/env bash
# Start a throwaway PostgreSQL and a single-node KRaft Apache Kafka broker on
# loopback, run a command with their addresses exported, then stop both.
#
# Usage: bash .ci/testenv.sh CMD [ARGS...]      e.g. bash .ci/testenv.sh go test -race ./...
#
# Exported to CMD:
#   BRIDGE_TEST_KAFKA=127.0.0.1:<port>          PLAINTEXT bootstrap address
#   BRIDGE_TEST_POSTGRES_DSN=postgres://postgres@127.0.0.1:<port>/postgres?sslmode=disable
#                                               superuser "postgres", trust auth, database "postgres"
# Exit status is CMD's (or 1 if the services could not be started, 2 on usage errors).
#
# Knobs (all optional):
#   KEEP_TESTENV=1            keep the temp dir (data + service logs) after exit
#   TESTENV_CACHE_DIR=DIR     Kafka jar cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/fhir-bridge)
#   TESTENV_READY_TIMEOUT=S   per-service readiness deadline in seconds (default 90)
#   TESTENV_PG_USER=NAME      OS user that runs PostgreSQL when invoked as root (default postgres)
#   JAVA_HOME                 JDK 17+ to run Kafka with (default: java on PATH)
#   TESTENV_PG_DURABLE=1      keep PostgreSQL's durability (fsync, synchronous_commit,
#                             full_page_writes on), as benchmarks need; tests leave it off
#
# Requirements: PostgreSQL server binaries (initdb, pg_ctl), Java 17+, Maven 3
# (only on the first run; jars are cached), python3 (optional, for port picking).
set -euo pipefail

# The whole script is one { ... } group so bash parses it completely before
# running anything: editing or checking out this file while a long test run
# is in progress then cannot break the cleanup at the end.
{

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
kafka_pom="$script_dir/kafka/pom.xml"
kafka_log4j="$script_dir/kafka/log4j2.yaml"
ready_timeout=${TESTENV_READY_TIMEOUT:-90}

log() { printf 'testenv: %s\n' "$*" >&2; }

# Print the tail of a service log so CI output shows why something failed.
show_log() {
  local name=$1 file=$2
  [[ -s $file ]] || return 0
  printf 'testenv: ----- last 50 lines of %s log (%s) -----\n' "$name" "$file" >&2
  tail -n 50 -- "$file" >&2 || true
  printf 'testenv: ----- end of %s log -----\n' "$name" >&2
}

die() {
  log "ERROR: $*"
  exit 1
}

if [[ $# -eq 0 ]]; then
  printf 'usage: bash %s CMD [ARGS...]\n' "${BASH_SOURCE[0]}" >&2
  exit 2
fi

# ---------------------------------------------------------------- state + cleanup

tmp=""
kafka_pid=""
pg_data=""
pg_log=""
kafka_log=""

# True if something accepts TCP connections on 127.0.0.1:$1.
tcp_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# shellcheck disable=SC2317  # invoked via trap
cleanup() {
  local rc=$?
  set +e
  trap - EXIT
  # A second Ctrl-C must not abort the teardown and orphan the services;
  # it is bounded (20 s for Kafka, 30 s for PostgreSQL) anyway.
  trap '' INT TERM
  if [[ -n $kafka_pid ]] && kill -0 "$kafka_pid" 2>/dev/null; then
    # SIGTERM runs Kafka's shutdown hook; a single combined node stops in a
    # few seconds. The data is thrown away, so don't wait forever.
    kill -TERM "$kafka_pid" 2>/dev/null
    local i
    for ((i = 0; i < 100; i++)); do
      kill -0 "$kafka_pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$kafka_pid" 2>/dev/null; then
      log "kafka did not stop within 20s, killing it"
      kill -KILL "$kafka_pid" 2>/dev/null
    fi
    wait "$kafka_pid" 2>/dev/null
  fi
  # postmaster.pid rather than a flag: also covers a signal arriving while
  # pg_ctl start was still running.
  if [[ -n $pg_data && -f $pg_data/postmaster.pid ]]; then
    as_pg "$pg_ctl" -D "$pg_data" -m immediate -w -t 30 stop >/dev/null 2>&1 ||
      log "pg_ctl stop failed (see $pg_log)"
  fi
  if [[ -n $tmp && -d $tmp ]]; then
    if [[ ${KEEP_TESTENV:-0} == 1 ]]; then
      log "KEEP_TESTENV=1: data and logs kept in $tmp"
    else
      rm -rf -- "$tmp"
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
# Convert signals into an exit so the EXIT trap stops the services.
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers

# Store a free loopback TCP port, distinct from ports already chosen, in the
# variable named $1. The OS picks it (bind to port 0); a bash probe is the
# fallback. Not a command substitution, so used_ports survives between calls.
used_ports=" "
free_port() {
  local p="" i
  for ((i = 0; i < 50; i++)); do
    if command -v python3 >/dev/null 2>&1; then
      p=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' 2>/dev/null) || p=""
    fi
    if [[ -z $p ]]; then
      p=$((20000 + RANDOM % 30000))
      tcp_open "$p" && continue
    fi
    if [[ $used_ports != *" $p "* ]]; then
      used_ports+="$p "
      printf -v "$1" '%s' "$p"
      return 0
    fi
  done
  die "could not find a free TCP port"
}

# Big-endian integer as printf %b escape text, e.g. "\\x00\\x0a" (text, not raw
# bytes: command substitution would drop NULs).
be_int() { # be_int NBYTES VALUE
  local i out=""
  for ((i = $1 - 1; i >= 0; i--)); do
    out+=$(printf '\\x%02x' $((($2 >> (8 * i)) & 255)))
  done
  printf '%s' "$out"
}

# Succeeds once the broker answers a FindCoordinator (v1) request for a
# consumer group with error code 0. This proves it speaks the Kafka protocol,
# and the first such request makes it create __consumer_offsets, so the tests'
# first consumer group does not get COORDINATOR_NOT_AVAILABLE and sit out
# kafka-go's 5 s JoinGroupBackoff. Runs in a subshell so fd 3 never leaks.
kafka_coordinator_ready() (
  local port=$1 client=testenv group=fhir-bridge-testenv-probe reply
  local len=$((2 + 2 + 4 + 2 + ${#client} + 2 + ${#group} + 1))
  { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
  # size, api_key=10, api_version=1, correlation_id=1, client_id, key, key_type=0 (group)
  printf '%b' "$(be_int 4 "$len")$(be_int 2 10)$(be_int 2 1)$(be_int 4 1)$(be_int 2 ${#client})$client$(be_int 2 ${#group})$group$(be_int 1 0)" >&3
  # Response: size(4) correlation_id(4) throttle_time_ms(4) error_code(2) ...
  reply=$(timeout 5 od -An -tx1 -N14 <&3 | tr -d ' \n') || return 1
  [[ ${#reply} -eq 28 && ${reply:24:4} == 0000 ]]
)

# PostgreSQL refuses to run as root, so as root run its tools as an
# unprivileged OS user; otherwise run them directly.
as_pg() {
  if ((EUID != 0)); then
    "$@"
  elif command -v runuser >/dev/null 2>&1; then
    runuser -u "$pg_os_user" -- "$@"
  else
    # shellcheck disable=SC2016  # expanded by the inner sh, not here
    su -s /bin/sh -c 'exec "$0" "$@"' -- "$pg_os_user" "$@"
  fi
}

# Locate a PostgreSQL server binary: PATH first, then Debian's versioned dirs.
find_pg_bin() {
  local name=$1 candidate
  if candidate=$(command -v "$name" 2>/dev/null); then
    printf '%s\n' "$candidate"
    return 0
  fi
  for candidate in $(printf '%s\n' /usr/lib/postgresql/*/bin/"$name" | sort -rV); do
    [[ -x $candidate ]] && { printf '%s\n' "$candidate"; return 0; }
  done
  return 1
}

# ---------------------------------------------------------------- preflight

start=$SECONDS

if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then
  java=$JAVA_HOME/bin/java
else
  java=$(command -v java) || die "java (17+) not found; install a JDK or set JAVA_HOME"
fi

initdb=$(find_pg_bin initdb) || die "PostgreSQL initdb not found (install postgresql server binaries)"
# Use pg_ctl/postgres from the same installation as initdb so versions match.
pg_bin_dir=$(dirname -- "$(readlink -f -- "$initdb")")
pg_ctl=$pg_bin_dir/pg_ctl
[[ -x $pg_ctl ]] || pg_ctl=$(find_pg_bin pg_ctl) || die "PostgreSQL pg_ctl not found"
pg_isready=$pg_bin_dir/pg_isready
[[ -x $pg_isready ]] || pg_isready=$(command -v pg_isready 2>/dev/null) || pg_isready=""

pg_os_user=${TESTENV_PG_USER:-postgres}
if ((EUID == 0)) && ! id -u "$pg_os_user" >/dev/null 2>&1; then
  die "running as root but OS user '$pg_os_user' does not exist (create it or set TESTENV_PG_USER)"
fi

kafka_version=$(sed -n 's:.*<kafka\.version>\(.*\)</kafka\.version>.*:\1:p' "$kafka_pom")
[[ -n $kafka_version ]] || die "could not read <kafka.version> from $kafka_pom"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fhir-bridge-testenv.XXXXXX")
pg_dir=$tmp/pg
pg_data=$pg_dir/data
pg_log=$pg_dir/postgres.log
kafka_dir=$tmp/kafka
kafka_log=$kafka_dir/logs/server.log
mkdir -p "$pg_dir" "$kafka_dir/logs" "$kafka_dir/data"
if ((EUID == 0)); then
  # mktemp makes the dir 0700 root; the PostgreSQL user must traverse it.
  chmod 755 "$tmp"
  chown "$pg_os_user": "$pg_dir"
fi

pg_port="" kafka_port="" controller_port=""
free_port pg_port
free_port kafka_port
free_port controller_port

# ---------------------------------------------------------------- kafka jars

# Cache key includes a hash of the pom so any dependency change re-resolves.
pom_hash=$(sha256sum "$kafka_pom" | cut -c1-12)
cache_root=${TESTENV_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/fhir-bridge}
kafka_home=$cache_root/kafka-$kafka_version-$pom_hash
kafka_libs=$kafka_home/libs
if [[ ! -f $kafka_libs/.complete ]]; then
  command -v mvn >/dev/null 2>&1 || die "mvn not found; needed once to fetch Kafka $kafka_version jars"
  log "fetching Kafka $kafka_version jars with Maven into $kafka_libs"
  mkdir -p "$kafka_home"
  staging=$(mktemp -d "$kafka_home/libs.tmp.XXXXXX")
  if ! mvn -q -B dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$staging" -f "$kafka_pom" </dev/null >"$tmp/maven.log" 2>&1; then
    show_log maven "$tmp/maven.log"
    rm -rf -- "$staging"
    die "maven could not resolve Kafka $kafka_version"
  fi
  touch "$staging/.complete"
  # Publish atomically; if a concurrent run won the race, keep its copy.
  mv -T "$staging" "$kafka_libs" 2>/dev/null || rm -rf -- "$staging"
fi

# ---------------------------------------------------------------- kafka start

# Generated here rather than templated: every value depends on this run.
cat >"$kafka_dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$kafka_port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$kafka_port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$kafka_dir/data
num.network.threads=2
num.io.threads=4
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Small cleaner buffer: the default 128 MiB would eat a quarter of the heap.
log.cleaner.dedupe.buffer.size=8388608
EOF

# Small heap, serial GC and C1-only JIT: a test broker needs fast startup and
# little CPU (the race-enabled tests share the machine), not peak throughput.
java_opts=(
  -Xms128m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1
  -Djava.awt.headless=true
  "-Dlog4j2.configurationFile=$kafka_log4j"
  "-Dkafka.logs.dir=$kafka_dir/logs"
  -cp "$kafka_libs/*"
)

# A throwaway cluster id: base64url of 16 random bytes, as StorageTool random-uuid makes.
cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
if ! "$java" "${java_opts[@]}" kafka.tools.StorageTool format --ignore-formatted \
  -t "$cluster_id" -c "$kafka_dir/server.properties" </dev/null >"$kafka_dir/logs/format.log" 2>&1; then
  show_log kafka-storage-format "$kafka_dir/logs/format.log"
  die "kafka storage format failed"
fi

kafka_start=$SECONDS
# stdio goes to a file so the JVM never holds the caller's (CI's) pipes open.
"$java" "${java_opts[@]}" kafka.Kafka "$kafka_dir/server.properties" \
  </dev/null >"$kafka_dir/logs/kafka.out" 2>&1 &
kafka_pid=$!

# ---------------------------------------------------------------- postgres (while kafka boots)

pg_start=$SECONDS
# cd: as root the target user may not be able to read the caller's cwd.
if ! (cd "$pg_dir" && as_pg "$initdb" -D "$pg_data" -U postgres -A trust -E UTF8 \
  --no-locale --no-sync >"$pg_dir/initdb.log" 2>&1); then
  show_log initdb "$pg_dir/initdb.log"
  die "initdb failed"
fi
# Tests connect over TCP; the unix socket is only a convenience for poking at a
# KEEP_TESTENV cluster, so drop it if a long TMPDIR would exceed the ~107-byte
# socket path limit.
pg_socket_dir=$pg_dir
((${#pg_dir} + 20 < 100)) || pg_socket_dir=""
# Throwaway cluster: durability settings off make the tests faster;
# benchmarks keep them (TESTENV_PG_DURABLE=1), since a commit waits for them.
durable=off
[[ ${TESTENV_PG_DURABLE:-} == 1 ]] && durable=on
cat >>"$pg_data/postgresql.conf" <<EOF

# --- fhir-bridge .ci/testenv.sh ---
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$pg_socket_dir'
fsync = $durable
synchronous_commit = $durable
full_page_writes = $durable
max_connections = 200
EOF
if ! (cd "$pg_dir" && as_pg "$pg_ctl" -D "$pg_data" -l "$pg_log" -w -t "$ready_timeout" start \
  >"$pg_dir/pg_ctl.log" 2>&1); then
  show_log pg_ctl "$pg_dir/pg_ctl.log"
  show_log postgres "$pg_log"
  die "postgres did not start"
fi
if [[ -n $pg_isready ]]; then
  deadline=$((SECONDS + ready_timeout))
  until "$pg_isready" -q -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres; do
    if ((SECONDS >= deadline)); then
      show_log postgres "$pg_log"
      die "postgres not ready on 127.0.0.1:$pg_port after ${ready_timeout}s"
    fi
    sleep 0.2
  done
fi
pg_version=$("$pg_bin_dir/postgres" --version 2>/dev/null | awk '{print $3}') || pg_version="?"
log "postgres $pg_version ready on 127.0.0.1:$pg_port ($((SECONDS - pg_start))s)"

# ---------------------------------------------------------------- kafka readiness

# A listening port alone is not enough: the broker opens it before it has
# caught up with the metadata log. Wait for KafkaRaftServer's "Kafka Server
# started" line, then for the group coordinator to answer.
deadline=$((kafka_start + ready_timeout))
until grep -q 'Kafka Server started' "$kafka_log" 2>/dev/null &&
  kafka_coordinator_ready "$kafka_port"; do
  if ! kill -0 "$kafka_pid" 2>/dev/null; then
    kafka_pid=""
    show_log kafka-stdout "$kafka_dir/logs/kafka.out"
    show_log kafka "$kafka_log"
    die "kafka exited during startup"
  fi
  if ((SECONDS >= deadline)); then
    show_log kafka-stdout "$kafka_dir/logs/kafka.out"
    show_log kafka "$kafka_log"
    die "kafka not ready on 127.0.0.1:$kafka_port after ${ready_timeout}s"
  fi
  sleep 0.25
done
log "kafka $kafka_version ready on 127.0.0.1:$kafka_port ($((SECONDS - kafka_start))s)"

# ---------------------------------------------------------------- run CMD

export BRIDGE_TEST_KAFKA="127.0.0.1:$kafka_port"
export BRIDGE_TEST_POSTGRES_DSN="postgres://postgres@127.0.0.1:$pg_port/postgres?sslmode=disable"
log "environment ready in $((SECONDS - start))s; running: $*"

cmd_start=$SECONDS
set +e
"$@"
rc=$?
set -e
log "command exited with status $rc after $((SECONDS - cmd_start))s"
if ((rc != 0)); then
  show_log postgres "$pg_log"
  show_log kafka "$kafka_log"
  show_log kafka-stdout "$kafka_dir/logs/kafka.out" # JVM crashes / OOM land here
fi
exit "$rc"
}
