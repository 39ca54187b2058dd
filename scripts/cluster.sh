#!/usr/bin/env bash
# A local cluster for kvrag's distributed store (issue 18), for the tests
# labelled `cluster` and for trying it: a Redis Cluster of 3 masters and 3
# replicas (the chunks' cached memories) and a PostgreSQL 15 primary with one
# streaming replica (the metadata), all on loopback, under one folder.
#
# usage: scripts/cluster.sh up|down|status
#   up      installs the Debian packages if missing, starts everything and
#           prints the index URI as its last line; on a cluster that is up
#           already it only prints the URI again, one that is partly up
#           (a killed run's leftovers) it takes down and starts afresh
#   down    stops everything and removes the folder
#   status  says what runs; exit status 0 when all of it does
# Environment: KVRAG_CLUSTER_DIR (default ${TMPDIR:-/tmp}/kvrag-cluster),
# KVRAG_REDIS_PORT (the first of 6 consecutive ports, default 7100),
# KVRAG_PG_PORT (the primary's; the replica's is the next, default 5540).
#
# PostgreSQL refuses to run as root: run as root, the script runs it as the
# system user kvrag-pg (created if missing). Authentication is `trust` on
# 127.0.0.1 only: a throwaway cluster, never one to keep data in.
set -euo pipefail

dir=${KVRAG_CLUSTER_DIR:-${TMPDIR:-/tmp}/kvrag-cluster}
redis_port=${KVRAG_REDIS_PORT:-7100}
pg_port=${KVRAG_PG_PORT:-5540}
replica_port=$((pg_port + 1))
mapfile -t redis_ports < <(seq "$redis_port" $((redis_port + 5)))
pg_bin=/usr/lib/postgresql/15/bin
pg_user=kvrag-pg
packages=(postgresql-15 libpq-dev redis-server libhiredis-dev)

log() { echo "cluster: $*" >&2; }
die() {
  log "$*"
  exit 1
}

install_missing_packages() {
  local missing=() p
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return
  log "installing ${missing[*]}"
  local sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends \
    "${missing[@]}" >&2
}

# Runs a PostgreSQL command as the user PostgreSQL accepts: kvrag-pg under
# root, the caller otherwise.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$pg_user" -- "$@"
  else
    "$@"
  fi
}

ensure_pg_user() {
  [ "$(id -u)" -eq 0 ] || return 0
  id -u "$pg_user" >/dev/null 2>&1 ||
    useradd --system --user-group --no-create-home --shell /usr/sbin/nologin "$pg_user"
}

# The URI of the index on this cluster: libpq's multi-host form (the
# primary first, then the replica reads may go to) and the Redis Cluster's
# nodes in `blobs`.
index_uri() {
  local nodes
  nodes=$(printf '127.0.0.1:%s,' "${redis_ports[@]}")
  echo "postgresql://kvrag@127.0.0.1:$pg_port,127.0.0.1:$replica_port/kvrag?blobs=redis://${nodes%,}"
}

# ---------------------------------------------------------------- Redis

start_redis_node() {
  local port=$1 node="$dir/redis/$1"
  mkdir -p "$node"
  cat >"$node/redis.conf" <<EOF
port $port
bind 127.0.0.1
daemonize yes
dir $node
pidfile $node/redis.pid
logfile $node/redis.log
cluster-enabled yes
cluster-config-file nodes.conf
cluster-node-timeout 2000
appendonly yes
save ""
EOF
  redis-server "$node/redis.conf"
}

wait_for() {
  local what=$1 tries=$2
  shift 2
  for ((i = 0; i < tries; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  die "$what did not come up (logs under $dir)"
}

redis_cluster_ok() {
  redis-cli -p "${redis_ports[0]}" cluster info 2>/dev/null | grep -q "^cluster_state:ok"
}

start_redis() {
  local port hosts=()
  for port in "${redis_ports[@]}"; do
    start_redis_node "$port"
    hosts+=("127.0.0.1:$port")
  done
  for port in "${redis_ports[@]}"; do
    wait_for "redis on port $port" 40 redis-cli -p "$port" ping
  done
  redis-cli --cluster create "${hosts[@]}" --cluster-replicas 1 --cluster-yes >"$dir/redis/create.log"
  wait_for "the Redis Cluster" 60 redis_cluster_ok
}

stop_redis() {
  local port
  for port in "${redis_ports[@]}"; do
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  done
}

# ---------------------------------------------------------------- PostgreSQL

pg_conf() {
  cat <<EOF
listen_addresses = '127.0.0.1'
port = $1
unix_socket_directories = '$dir/pg'
wal_level = replica
max_wal_senders = 4
hot_standby = on
EOF
}

replica_streaming() {
  as_pg "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U kvrag -d kvrag -Atc \
    "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'" | grep -q '^1$'
}

start_postgres() {
  ensure_pg_user
  mkdir -p "$dir/pg"
  [ "$(id -u)" -eq 0 ] && chown "$pg_user:" "$dir/pg"
  as_pg "$pg_bin/initdb" -D "$dir/pg/primary" -U kvrag --auth=trust >"$dir/pg/initdb.log"
  pg_conf "$pg_port" | as_pg tee -a "$dir/pg/primary/postgresql.conf" >/dev/null
  as_pg "$pg_bin/pg_ctl" -D "$dir/pg/primary" -l "$dir/pg/primary.log" -w start >/dev/null
  as_pg "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U kvrag kvrag
  # -R writes the standby's primary_conninfo and standby.signal.
  as_pg "$pg_bin/pg_basebackup" -h 127.0.0.1 -p "$pg_port" -U kvrag -D "$dir/pg/replica" -R \
    -X stream
  echo "port = $replica_port" | as_pg tee -a "$dir/pg/replica/postgresql.conf" >/dev/null
  as_pg "$pg_bin/pg_ctl" -D "$dir/pg/replica" -l "$dir/pg/replica.log" -w start >/dev/null
  wait_for "PostgreSQL streaming replication" 60 replica_streaming
}

stop_postgres() {
  local server
  for server in replica primary; do
    if [ -f "$dir/pg/$server/postmaster.pid" ]; then
      as_pg "$pg_bin/pg_ctl" -D "$dir/pg/$server" -m fast -w stop >/dev/null 2>&1 || true
    fi
  done
}

# ---------------------------------------------------------------- commands

# One line per part; false when one is not running.
report_status() {
  local ok=0 port role
  for port in "${redis_ports[@]}"; do
    role=$(redis-cli -p "$port" role 2>/dev/null | head -n 1) || role=""
    echo "redis 127.0.0.1:$port ${role:-down}"
    [ -n "$role" ] || ok=1
  done
  if redis_cluster_ok; then echo "redis cluster ok"; else
    echo "redis cluster not ok"
    ok=1
  fi
  for port in "$pg_port" "$replica_port"; do
    if "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
      role=$(as_pg "$pg_bin/psql" -h 127.0.0.1 -p "$port" -U kvrag -d kvrag -Atc \
        "SELECT CASE WHEN pg_is_in_recovery() THEN 'replica' ELSE 'primary' END")
      echo "postgresql 127.0.0.1:$port $role"
    else
      echo "postgresql 127.0.0.1:$port down"
      ok=1
    fi
  done
  return $ok
}

up() {
  install_missing_packages
  if [ -d "$dir" ]; then
    if report_status >/dev/null; then
      index_uri
      return
    fi
    # Left by a run that was killed or a machine that rebooted: nothing of
    # it can be trusted, so it is stopped, removed and started afresh.
    log "$dir holds a cluster that is not fully up; starting it afresh:"
    report_status >&2 || true
    down
  fi
  mkdir -p "$dir/redis"
  chmod 755 "$dir"
  start_redis
  start_postgres
  log "up under $dir"
  index_uri
}

down() {
  [ -d "$dir" ] || {
    log "nothing under $dir"
    return
  }
  stop_redis
  stop_postgres
  rm -rf "$dir"
  log "down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status)
    [ -d "$dir" ] || die "no cluster under $dir"
    report_status
    ;;
  *)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
