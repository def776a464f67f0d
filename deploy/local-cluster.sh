#!/usr/bin/env bash
# Run a local 3-node Demandflow cluster on 127.0.0.1 with OS-chosen ports,
# for trying the operator commands and drills by hand:
#
#   deploy/local-cluster.sh [BIN] [DIR]      (defaults: bin/demandflow, a temp dir)
#
# n1 starts first; n2 and n3 join its gossip address (read from
# <dir>/n1/addrs.json). The script prints each node's API URL and
# DEMANDFLOW_ADDR for `demandflow members`, then waits; Ctrl-C stops the
# nodes (SIGTERM) and keeps DIR with the logs (<dir>/nK.log).
set -euo pipefail
BIN=${1:-bin/demandflow}
DIR=${2:-$(mktemp -d -t demandflow-local-XXXXXX)}
N=3
KEY=$(head -c 32 /dev/urandom | base64)
# As deploy/demandflow.service runs nodes: Pebble's C-malloc memory on
# transparent huge pages (unless the caller set GLIBC_TUNABLES).
export GLIBC_TUNABLES=${GLIBC_TUNABLES:-glibc.malloc.hugetlb=1}
pids=()

cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped; data and logs kept in $DIR"
}
trap cleanup EXIT INT TERM

# field FILE NAME prints the first string member NAME of a JSON object.
field() { sed -n "s/.*\"$2\": *\"\([^\"]*\)\".*/\1/p" "$1" | head -n1; }

wait_addrs() {
  for _ in $(seq 1 300); do
    [ -s "$1/addrs.json" ] && [ -n "$(field "$1/addrs.json" http)" ] && return 0
    sleep 0.1
  done
  echo "node in $1 did not write addrs.json; see its log" >&2
  exit 1
}

join=""
for i in $(seq 1 $N); do
  d="$DIR/n$i"; mkdir -p "$d"; rm -f "$d/addrs.json"
  args=(node --data-dir "$d" --node-name "n$i" --http-addr 127.0.0.1:0 --raft-addr 127.0.0.1:0
        --gossip-addr 127.0.0.1:0 --bootstrap-expect $N --cluster-key "$KEY")
  [ -n "$join" ] && args+=(--join "$join")
  "$BIN" "${args[@]}" >>"$DIR/n$i.log" 2>&1 &
  pids+=($!)
  wait_addrs "$d"
  [ -z "$join" ] && join=$(field "$d/addrs.json" gossip)
  echo "n$i: http://$(field "$d/addrs.json" http)  (log $DIR/n$i.log)"
done
echo "export DEMANDFLOW_ADDR=http://$(field "$DIR/n1/addrs.json" http)"
echo "Ctrl-C to stop."
wait
