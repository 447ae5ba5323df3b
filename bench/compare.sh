#!/usr/bin/env bash
# Measures two builds of the bridge in the same run, alternating, with the
# load harness (cmd/fhir-bridge/load_test.go) against one real Kafka broker
# and PostgreSQL (.ci/testenv.sh):
#
#   bash bench/compare.sh [BASE_REV] [ROUNDS]
#
# BASE_REV (default: the first parent of the commit that introduced engine
# v2) is built from a temporary git worktree; the other build is the working
# tree. Each round runs BenchmarkRouteThroughput and BenchmarkRouteLatency
# for the base, then for the working tree. Results go to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:-df150f8}
rounds=${2:-3}
work=$(mktemp -d)
trap 'git worktree remove --force "$work/base" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git worktree add --detach "$work/base" "$base" >/dev/null
(cd "$work/base" && go build -o "$work/bridge-base" ./cmd/fhir-bridge)
go build -o "$work/bridge-head" ./cmd/fhir-bridge
go test -c -o "$work/loadtest" ./cmd/fhir-bridge
echo "base=$base ($(git rev-parse --short "$base")) head=$(git rev-parse --short HEAD)$(git diff --quiet || echo +dirty) rounds=$rounds"
bash .ci/testenv.sh bash -c '
  set -e
  cd cmd/fhir-bridge
  for i in $(seq 1 '"$rounds"'); do
    for lane in base head; do
      legacy=""; [[ $lane == base ]] && legacy=1
      echo "== round $i lane $lane"
      BRIDGE_LOAD_BINARY='"$work"'/bridge-$lane BRIDGE_LOAD_LEGACY=$legacy \
        '"$work"'/loadtest -test.run "^$" -test.bench "Route(Throughput|Latency)" -test.benchtime 1x 2>/dev/null | grep -E "^Benchmark"
    done
  done
'
