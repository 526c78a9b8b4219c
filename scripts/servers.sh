#!/usr/bin/env bash
# Throwaway local database servers for xa's tests and demo, all bound to 127.0.0.1:
#
#   MariaDB 10.11    127.0.0.1:13306   (+ a unix socket in the servers dir, root via unix_socket)
#   PostgreSQL 15    127.0.0.1:15432   max_prepared_transactions = 6000 (or
#                                      XA_SERVERS_PG_MAX_PREPARED, read at every start)
#   PostgreSQL 15    127.0.0.1:15433   max_prepared_transactions = 0  (the "disabled" instance)
#   RabbitMQ 3.10    127.0.0.1:15673   AMQP (xa-msgd's broker); its Erlang distribution on
#                                      127.0.0.1:<port+2000>, its epmd on 127.0.0.1:<port+1000>
#   Redis 7.0        127.0.0.1:16379   xa-msgd's Redis message store: AOF with appendfsync always,
#                                      maxmemory-policy noeviction, a password (requirepass)
#
# Usage: scripts/servers.sh start|stop|status|env|kill-mariadb|kill-pg|kill-rabbitmq|kill-redis|
#                           stop-mariadb|stop-pg|stop-rabbitmq|stop-redis
#
#   start         initialise (first time) and start all five; already running is fine, and stale
#                 pid/socket files left by a crash are cleaned up. Writes <dir>/env.sh.
#   stop          clean shutdown of all five (prepared transactions, durable queues and Redis
#                 data persist).
#   status        one line per server; exit 0 only when all five run.
#   env           print the environment file (source it, or eval "$(scripts/servers.sh env)").
#   kill-mariadb  SIGKILL mariadbd (a crash, for crash tests); `start` brings it back with its data.
#   kill-pg       SIGKILL the PostgreSQL postmaster of port 15432 and all its backends.
#   kill-rabbitmq SIGKILL the RabbitMQ node; `start` brings it back with its durable queues and
#                 persistent messages.
#   kill-redis    SIGKILL redis-server; `start` brings it back with its data (from the AOF).
#   stop-mariadb, stop-pg, stop-rabbitmq, stop-redis   clean shutdown of that one server; `start`
#                 brings it back.
#
# Where data lives: XA_SERVERS_DIR (default <repo>/build/servers). PostgreSQL runs as the
# `postgres` OS user (initdb refuses root); when that user cannot reach the servers dir, its data
# goes to /tmp/xa-pg-<hash of the servers dir> and <dir>/pg, <dir>/pg-disabled are symlinks to it.
#
# Ports can be moved (e.g. to test a second checkout next to running servers) with
# XA_SERVERS_MARIADB_PORT, XA_SERVERS_PG_PORT, XA_SERVERS_PG_DISABLED_PORT,
# XA_SERVERS_RABBITMQ_PORT (the AMQP port; 1000 and 2000 above it must be free too),
# XA_SERVERS_REDIS_PORT; the ports a servers dir was started with are remembered in <dir>/ports
# and reused by later commands.
#
# Secrets: passwords are generated once from /dev/urandom into <dir>/mariadb.password,
# <dir>/pg.password, <dir>/rabbitmq.password and <dir>/redis.password (mode 0600). They never
# appear on a command line (argv is visible in ps): SQL that carries them goes to the clients
# through stdin; Redis reads its own from its generated redis.conf (mode 0600), redis-cli from
# the REDISCLI_AUTH environment variable.
set -euo pipefail
umask 022

readonly SCRIPT_PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
readonly REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVERS_DIR="${XA_SERVERS_DIR:-$REPO_ROOT/build/servers}"

readonly PG_BIN=/usr/lib/postgresql/15/bin
readonly READY_TIMEOUT_S=120
readonly STOP_TIMEOUT_S=60
readonly TM_USER=xa_tm
readonly TEST_DB=xa_test

log() { printf 'servers.sh: %s\n' "$*" >&2; }
die() { printf 'servers.sh: error: %s\n' "$*" >&2; exit 1; }

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$SCRIPT_PATH"; }

# ---------------------------------------------------------------------------------------------
# Paths and ports

resolve_paths() {
  mkdir -p "$SERVERS_DIR"
  SERVERS_DIR="$(cd "$SERVERS_DIR" && pwd -P)"
  MARIADB_DIR="$SERVERS_DIR/mariadb"
  MARIADB_DATA="$MARIADB_DIR/data"
  MARIADB_SOCK="$SERVERS_DIR/mariadb.sock"
  MARIADB_PID="$MARIADB_DIR/mariadbd.pid"
  MARIADB_LOG="$MARIADB_DIR/mariadbd.err"
  MARIADB_PASSWORD_FILE="$SERVERS_DIR/mariadb.password"
  PG_PASSWORD_FILE="$SERVERS_DIR/pg.password"
  ODBC_DIR="$SERVERS_DIR/odbc"
  ENV_FILE="$SERVERS_DIR/env.sh"
  PORTS_FILE="$SERVERS_DIR/ports"
  RABBITMQ_DIR="$SERVERS_DIR/rabbitmq"
  RABBITMQ_PASSWORD_FILE="$SERVERS_DIR/rabbitmq.password"
  REDIS_DIR="$SERVERS_DIR/redis"
  REDIS_DATA="$REDIS_DIR/data"
  REDIS_CONF="$REDIS_DIR/redis.conf"
  REDIS_PID="$REDIS_DIR/redis.pid"
  REDIS_LOG="$REDIS_DIR/redis.log"
  REDIS_PASSWORD_FILE="$SERVERS_DIR/redis.password"

  local recorded_mariadb="" recorded_pg="" recorded_pg_disabled="" recorded_rabbitmq=""
  local recorded_redis=""
  if [[ -f "$PORTS_FILE" ]]; then
    # Written by this script: KEY=number lines; read without sourcing.
    local key value
    while IFS='=' read -r key value; do
      [[ "$value" =~ ^[0-9]+$ ]] || continue
      case "$key" in
        MARIADB_PORT) recorded_mariadb="$value" ;;
        PG_PORT) recorded_pg="$value" ;;
        PG_DISABLED_PORT) recorded_pg_disabled="$value" ;;
        RABBITMQ_PORT) recorded_rabbitmq="$value" ;;
        REDIS_PORT) recorded_redis="$value" ;;
      esac
    done <"$PORTS_FILE"
  fi
  MARIADB_PORT="${XA_SERVERS_MARIADB_PORT:-${recorded_mariadb:-13306}}"
  PG_PORT="${XA_SERVERS_PG_PORT:-${recorded_pg:-15432}}"
  PG_DISABLED_PORT="${XA_SERVERS_PG_DISABLED_PORT:-${recorded_pg_disabled:-15433}}"
  RABBITMQ_PORT="${XA_SERVERS_RABBITMQ_PORT:-${recorded_rabbitmq:-15673}}"
  REDIS_PORT="${XA_SERVERS_REDIS_PORT:-${recorded_redis:-16379}}"
  local p
  for p in "$MARIADB_PORT" "$PG_PORT" "$PG_DISABLED_PORT" "$RABBITMQ_PORT" "$REDIS_PORT"; do
    [[ "$p" =~ ^[0-9]+$ ]] && ((p > 1024 && p < 63536)) || die "bad port '$p'"
  done
  RABBITMQ_EPMD_PORT=$((RABBITMQ_PORT + 1000))
  RABBITMQ_DIST_PORT=$((RABBITMQ_PORT + 2000))
  RABBITMQ_NODE="xa${RABBITMQ_PORT}@localhost"
  # sun_path holds 108 bytes; PostgreSQL's socket name adds "/.s.PGSQL.NNNNN".
  ((${#MARIADB_SOCK} < 100)) ||
    die "servers dir path too long for a unix socket ($MARIADB_SOCK); set XA_SERVERS_DIR to a shorter path"
}

record_ports() {
  printf 'MARIADB_PORT=%s\nPG_PORT=%s\nPG_DISABLED_PORT=%s\nRABBITMQ_PORT=%s\nREDIS_PORT=%s\n' \
    "$MARIADB_PORT" "$PG_PORT" "$PG_DISABLED_PORT" "$RABBITMQ_PORT" "$REDIS_PORT" >"$PORTS_FILE.tmp"
  mv -f "$PORTS_FILE.tmp" "$PORTS_FILE"
}

# The PostgreSQL instance dirs must be reachable by the postgres OS user. Sets PG_ROOT.
resolve_pg_root() {
  if [[ -L "$SERVERS_DIR/pg" ]]; then
    PG_ROOT="$(dirname "$(readlink -f "$SERVERS_DIR/pg")")"
  elif [[ -d "$SERVERS_DIR/pg" ]] || postgres_can_traverse "$SERVERS_DIR"; then
    PG_ROOT="$SERVERS_DIR"
  else
    local hash
    hash="$(printf '%s' "$SERVERS_DIR" | sha256sum | cut -c1-16)"
    PG_ROOT="/tmp/xa-pg-$hash"
  fi
  PG_MAIN="$PG_ROOT/pg"
  PG_DISABLED="$PG_ROOT/pg-disabled"
}

postgres_can_traverse() {
  id postgres >/dev/null 2>&1 || return 1
  (cd / && runuser -u postgres -- test -x "$1" -a -r "$1") 2>/dev/null
}

# Creates PG_ROOT when it lives under /tmp, refusing anything another user could have planted.
prepare_pg_root() {
  if [[ "$PG_ROOT" == "$SERVERS_DIR" ]]; then
    return
  fi
  if [[ ! -e "$PG_ROOT" ]]; then
    mkdir -m 0755 "$PG_ROOT"
  fi
  [[ -d "$PG_ROOT" && ! -L "$PG_ROOT" ]] || die "$PG_ROOT is not a plain directory; remove it"
  [[ "$(stat -c %u "$PG_ROOT")" == 0 ]] || die "$PG_ROOT is not owned by root; remove it"
  chmod 0755 "$PG_ROOT"
  local name
  for name in pg pg-disabled; do
    if [[ ! -e "$SERVERS_DIR/$name" ]]; then
      ln -s "$PG_ROOT/$name" "$SERVERS_DIR/$name"
    fi
  done
  log "postgres cannot reach $SERVERS_DIR; PostgreSQL data lives in $PG_ROOT (symlinked)"
}

# ---------------------------------------------------------------------------------------------
# Small helpers

# Alphanumeric, 32 characters. Written once; later starts reuse it.
ensure_password_file() {
  local file="$1"
  if [[ -s "$file" ]]; then
    chmod 0600 "$file"
    return
  fi
  local bytes password
  bytes="$(LC_ALL=C tr -dc 'A-Za-z0-9' < <(head -c 1024 /dev/urandom))"
  password="${bytes:0:32}"
  ((${#password} == 32)) || die "could not generate a password"
  (umask 077 && printf '%s' "$password" >"$file.tmp")
  mv -f "$file.tmp" "$file"
}

# True when something accepts TCP connections on 127.0.0.1:<port>.
port_in_use() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# What listens on <port>, for the error message.
port_owner() {
  if command -v ss >/dev/null 2>&1; then
    ss -ltnpH "sport = :$1" 2>/dev/null | head -n 3 || true
  fi
}

# True when <pid> is alive and its command line contains <needle>.
pid_matches() {
  local pid="$1" needle="$2" cmdline
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmdline" == *"$needle"* ]]
}

read_pid_file() {
  local line=""
  [[ -f "$1" ]] && IFS= read -r line <"$1" || true
  printf '%s' "$line"
}

wait_pid_gone() {
  local pid="$1" deadline=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

show_log_tail() {
  local file="$1"
  if [[ -f "$file" ]]; then
    printf -- '--- last lines of %s ---\n' "$file" >&2
    tail -n 40 "$file" >&2 || true
    printf -- '--- end of %s ---\n' "$file" >&2
  fi
}

# Version gate: a prepared XA branch survives its session's disconnect only from 10.5 on.
check_mariadb_version() {
  command -v mariadbd >/dev/null 2>&1 || [[ -x /usr/sbin/mariadbd ]] ||
    die "mariadbd not found; run scripts/install-deps.sh"
  local version_line version major minor
  version_line="$(PATH="$PATH:/usr/sbin" mariadbd --version)"
  version="$(sed -n 's/.*Ver \([0-9]*\.[0-9]*\)\..*/\1/p' <<<"$version_line")"
  major="${version%%.*}"
  minor="${version#*.}"
  [[ "$major" =~ ^[0-9]+$ && "$minor" =~ ^[0-9]+$ ]] ||
    die "cannot read the MariaDB version from: $version_line"
  if ((major < 10 || (major == 10 && minor < 5))); then
    die "MariaDB $version is too old: before 10.5 a prepared XA transaction is rolled back when its session disconnects, so 2PC recovery cannot work. Install MariaDB >= 10.5 (Debian 12 ships 10.11)."
  fi
}

# ---------------------------------------------------------------------------------------------
# MariaDB

mariadb_pid() {
  local pid
  pid="$(read_pid_file "$MARIADB_PID")"
  if pid_matches "$pid" "--datadir=$MARIADB_DATA"; then
    printf '%s' "$pid"
  fi
}

mariadb_admin() { PATH="$PATH:/usr/sbin" mariadb-admin --no-defaults -S "$MARIADB_SOCK" -uroot "$@"; }
mariadb_root_sql() { mariadb --no-defaults -S "$MARIADB_SOCK" -uroot --batch "$@"; }

mariadb_start() {
  check_mariadb_version
  mkdir -p "$MARIADB_DIR"
  chmod 0700 "$MARIADB_DIR"
  ensure_password_file "$MARIADB_PASSWORD_FILE"

  local pid started_pid=""
  pid="$(mariadb_pid)"
  if [[ -n "$pid" ]]; then
    if mariadb_admin ping >/dev/null 2>&1; then
      log "mariadb: already running (pid $pid)"
      mariadb_ensure_accounts
      return
    fi
    log "mariadb: pid $pid is alive but not answering yet; waiting"
  else
    if port_in_use "$MARIADB_PORT"; then
      port_owner "$MARIADB_PORT" >&2
      die "mariadb: port $MARIADB_PORT on 127.0.0.1 is used by another process, not by the server of $SERVERS_DIR. Stop that server (its own scripts/servers.sh stop) or choose other ports with XA_SERVERS_MARIADB_PORT/XA_SERVERS_PG_PORT/XA_SERVERS_PG_DISABLED_PORT."
    fi
    # A crash (kill -9) leaves the pid file and socket behind; the process is gone, remove them.
    rm -f "$MARIADB_PID" "$MARIADB_SOCK" "$MARIADB_SOCK.lock"
    if [[ ! -d "$MARIADB_DATA/mysql" ]]; then
      log "mariadb: initialising $MARIADB_DATA"
      rm -rf "$MARIADB_DATA"
      # Default root authentication is unix_socket: only the OS root user gets in, through the
      # socket, with no password. No other root account, no test database.
      if ! PATH="$PATH:/usr/sbin" mariadb-install-db --no-defaults --datadir="$MARIADB_DATA" \
        --user=root --auth-root-authentication-method=socket --skip-test-db \
        --skip-name-resolve >"$MARIADB_DIR/install-db.log" 2>&1 </dev/null 9>&-; then
        show_log_tail "$MARIADB_DIR/install-db.log"
        die "mariadb: mariadb-install-db failed"
      fi
    fi
    log "mariadb: starting on 127.0.0.1:$MARIADB_PORT"
    # setsid + closed fds: the server must not hold the caller's terminal, pipes or lock.
    setsid "$(PATH="$PATH:/usr/sbin" command -v mariadbd)" --no-defaults \
      --datadir="$MARIADB_DATA" --port="$MARIADB_PORT" --bind-address=127.0.0.1 \
      --socket="$MARIADB_SOCK" --pid-file="$MARIADB_PID" --log-error="$MARIADB_LOG" \
      --user=root --skip-name-resolve --innodb-buffer-pool-size=256M \
      --innodb-flush-log-at-trx-commit=1 --max-connections=300 \
      --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
      </dev/null >>"$MARIADB_DIR/mariadbd.out" 2>&1 9>&- &
    started_pid=$!
  fi

  local deadline=$((SECONDS + READY_TIMEOUT_S))
  until mariadb_admin ping >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      show_log_tail "$MARIADB_LOG"
      die "mariadb: not ready after ${READY_TIMEOUT_S}s"
    fi
    if [[ -n "$started_pid" ]] && ! kill -0 "$started_pid" 2>/dev/null; then
      show_log_tail "$MARIADB_LOG"
      die "mariadb: the server exited during start-up"
    fi
    sleep 0.2
  done
  mariadb_ensure_accounts
  log "mariadb: ready (pid $(mariadb_pid), 127.0.0.1:$MARIADB_PORT, socket $MARIADB_SOCK)"
}

# Idempotent; the password travels through stdin only.
mariadb_ensure_accounts() {
  local password host
  password="$(<"$MARIADB_PASSWORD_FILE")"
  {
    printf "CREATE DATABASE IF NOT EXISTS %s CHARACTER SET utf8mb4;\n" "$TEST_DB"
    for host in 127.0.0.1 localhost; do
      printf "CREATE USER IF NOT EXISTS '%s'@'%s' IDENTIFIED BY '%s';\n" "$TM_USER" "$host" "$password"
      printf "ALTER USER '%s'@'%s' IDENTIFIED BY '%s';\n" "$TM_USER" "$host" "$password"
      # XA RECOVER needs no privilege on 10.11; KILL of one's own sessions needs none either.
      printf "GRANT ALL ON %s.* TO '%s'@'%s';\n" "$TEST_DB" "$TM_USER" "$host"
    done
  } | mariadb_root_sql >/dev/null || die "mariadb: could not create the '$TM_USER' account"
}

mariadb_stop() {
  local pid
  pid="$(mariadb_pid)"
  if [[ -z "$pid" ]]; then
    log "mariadb: not running"
    rm -f "$MARIADB_PID" "$MARIADB_SOCK" "$MARIADB_SOCK.lock"
    return
  fi
  log "mariadb: stopping (pid $pid)"
  mariadb_admin shutdown >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
  if ! wait_pid_gone "$pid" "$STOP_TIMEOUT_S"; then
    show_log_tail "$MARIADB_LOG"
    die "mariadb: pid $pid did not stop within ${STOP_TIMEOUT_S}s"
  fi
  log "mariadb: stopped"
}

mariadb_kill() {
  local pid
  pid="$(mariadb_pid)"
  [[ -n "$pid" ]] || die "mariadb: not running, nothing to kill"
  log "mariadb: SIGKILL pid $pid"
  kill -KILL "$pid"
  wait_pid_gone "$pid" 30 || die "mariadb: pid $pid survived SIGKILL"
}

mariadb_status() {
  local pid
  pid="$(mariadb_pid)"
  if [[ -n "$pid" ]] && mariadb_admin ping >/dev/null 2>&1; then
    echo "mariadb: running (pid $pid, 127.0.0.1:$MARIADB_PORT, socket $MARIADB_SOCK, data $MARIADB_DATA)"
  elif [[ -n "$pid" ]]; then
    echo "mariadb: starting or stuck (pid $pid, not answering)"
    return 1
  else
    echo "mariadb: stopped (data $MARIADB_DATA)"
    return 1
  fi
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL (two instances: <name> is "pg" or "pg-disabled")

as_postgres() { (cd / && runuser -u postgres -- "$@"); }

pg_instance_dir() { if [[ "$1" == pg ]]; then printf '%s' "$PG_MAIN"; else printf '%s' "$PG_DISABLED"; fi; }
pg_instance_port() { if [[ "$1" == pg ]]; then printf '%s' "$PG_PORT"; else printf '%s' "$PG_DISABLED_PORT"; fi; }

pg_postmaster_pid() {
  local dir="$1" pid
  pid="$(read_pid_file "$dir/data/postmaster.pid")"
  if pid_matches "$pid" "$dir/data"; then
    printf '%s' "$pid"
  fi
}

pg_write_config() {
  local name="$1" dir="$2" port="$3" conf
  if [[ "$name" == pg ]]; then
    # The lock table grows with it (64 locks per slot), about 1 GB of shared memory at 50,000.
    local max_prepared="${XA_SERVERS_PG_MAX_PREPARED:-6000}"
    [[ "$max_prepared" =~ ^[1-9][0-9]{0,6}$ ]] ||
      die "XA_SERVERS_PG_MAX_PREPARED='$max_prepared' is not a count from 1 to 9999999"
    conf="# 6000 by default: the recovery bench leaves 5,000 transactions in doubt at once
# (XA_SERVERS_PG_MAX_PREPARED=50100 for its 100,000 branches).
max_prepared_transactions = $max_prepared
# 300: xa_tm_bench at 64 clients holds two PostgreSQL sessions a client (hand-written and the
# manager's) beside the agents', the probes' and the tests' own.
max_connections = 300"
  else
    conf="# PREPARE TRANSACTION fails here with 55000 'prepared transactions are disabled'.
max_prepared_transactions = 0
max_connections = 20
shared_buffers = 16MB"
  fi
  as_postgres tee "$dir/data/xa.conf" >/dev/null <<EOF
# Written by scripts/servers.sh on every start; do not edit.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
password_encryption = 'scram-sha-256'
fsync = on
synchronous_commit = on
full_page_writes = on
# After a crash, flush the data directory with one syncfs() instead of an fsync() per file
# (4 s here): crash tests restart PostgreSQL often. Durability is unchanged.
recovery_init_sync_method = syncfs
$conf
EOF
  as_postgres tee "$dir/data/pg_hba.conf" >/dev/null <<'EOF'
# Written by scripts/servers.sh on every start; do not edit.
# TYPE  DATABASE  USER      ADDRESS        METHOD
local   all       all                      trust
host    all       postgres  127.0.0.1/32   trust
host    all       all       127.0.0.1/32   scram-sha-256
EOF
}

pg_start_instance() {
  local name="$1" dir port pid
  dir="$(pg_instance_dir "$name")"
  port="$(pg_instance_port "$name")"
  if [[ ! -d "$dir" ]]; then
    mkdir -p "$dir"
  fi
  chown postgres:postgres "$dir"
  chmod 0700 "$dir"

  pid="$(pg_postmaster_pid "$dir")"
  if [[ -z "$pid" ]]; then
    if port_in_use "$port"; then
      port_owner "$port" >&2
      die "$name: port $port on 127.0.0.1 is used by another process, not by the server of $dir. Stop that server (its own scripts/servers.sh stop) or choose other ports with XA_SERVERS_PG_PORT/XA_SERVERS_PG_DISABLED_PORT."
    fi
    if [[ ! -f "$dir/data/PG_VERSION" ]]; then
      log "$name: initialising $dir/data"
      rm -rf "$dir/data"
      if ! as_postgres "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 \
        --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 </dev/null 9>&-; then
        show_log_tail "$dir/initdb.log"
        die "$name: initdb failed"
      fi
      printf "\ninclude_if_exists = 'xa.conf'\n" | as_postgres tee -a "$dir/data/postgresql.conf" >/dev/null
    fi
    pg_write_config "$name" "$dir" "$port"
    # A crash leaves postmaster.pid behind; the postmaster is dead (checked above): remove it.
    rm -f "$dir/data/postmaster.pid"
    log "$name: starting on 127.0.0.1:$port"
    # -W: pg_ctl's own wait polls once a second; the loop below polls faster (crash tests
    # restart servers often).
    if ! as_postgres setsid "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -W \
      start </dev/null >"$dir/pg_ctl.out" 2>&1 9>&-; then
      cat "$dir/pg_ctl.out" >&2 || true
      show_log_tail "$dir/postgres.log"
      die "$name: the server did not start"
    fi
  else
    pg_write_config "$name" "$dir" "$port"
  fi

  local started=$SECONDS deadline=$((SECONDS + READY_TIMEOUT_S))
  until as_postgres "$PG_BIN/pg_isready" -q -h "$dir" -p "$port" </dev/null; do
    if ((SECONDS >= deadline)); then
      show_log_tail "$dir/postgres.log"
      die "$name: not ready after ${READY_TIMEOUT_S}s"
    fi
    if ((SECONDS - started >= 5)) && [[ -z "$(pg_postmaster_pid "$dir")" ]]; then
      show_log_tail "$dir/postgres.log"
      die "$name: the server exited during start-up"
    fi
    sleep 0.1
  done
  pg_ensure_accounts "$dir" "$port"
  log "$name: ready (pid $(pg_postmaster_pid "$dir"), 127.0.0.1:$port)"
}

# Idempotent; the password travels through stdin only, and the session keeps failing statements
# out of the server log.
pg_ensure_accounts() {
  local dir="$1" port="$2" password
  password="$(<"$PG_PASSWORD_FILE")"
  {
    printf "SET log_min_error_statement = 'panic';\n"
    printf "SET log_statement = 'none';\n"
    printf "SELECT 'CREATE ROLE %s LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%s')\\\\gexec\n" "$TM_USER" "$TM_USER"
    printf "ALTER ROLE %s LOGIN PASSWORD '%s';\n" "$TM_USER" "$password"
    printf "SELECT 'CREATE DATABASE %s OWNER %s' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '%s')\\\\gexec\n" "$TEST_DB" "$TM_USER" "$TEST_DB"
  } | as_postgres "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres \
    -d postgres >/dev/null || die "postgresql on port $port: could not create the '$TM_USER' role"
}

pg_stop_instance() {
  local name="$1" dir pid
  dir="$(pg_instance_dir "$name")"
  pid="$(pg_postmaster_pid "$dir")"
  if [[ -z "$pid" ]]; then
    log "$name: not running"
    return
  fi
  log "$name: stopping (pid $pid)"
  if ! as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t "$STOP_TIMEOUT_S" stop \
    </dev/null >/dev/null 2>&1 9>&-; then
    show_log_tail "$dir/postgres.log"
    die "$name: pid $pid did not stop within ${STOP_TIMEOUT_S}s"
  fi
  log "$name: stopped"
}

# SIGKILL the postmaster and every backend at once, as a machine crash would.
pg_kill_instance() {
  local name="$1" dir pid stat rest child
  dir="$(pg_instance_dir "$name")"
  pid="$(pg_postmaster_pid "$dir")"
  [[ -n "$pid" ]] || die "$name: not running, nothing to kill"
  local -a children=()
  for stat in /proc/[0-9]*/stat; do
    rest=""
    read -r rest <"$stat" 2>/dev/null || continue
    rest="${rest##*) }"
    # After the command name: state ppid ...
    read -r _ child _ <<<"$rest"
    if [[ "$child" == "$pid" ]]; then
      stat="${stat#/proc/}"
      children+=("${stat%/stat}")
    fi
  done
  log "$name: SIGKILL postmaster $pid and ${#children[@]} children"
  kill -KILL "$pid" "${children[@]}" 2>/dev/null || true
  wait_pid_gone "$pid" 30 || die "$name: pid $pid survived SIGKILL"
  for child in "${children[@]}"; do
    wait_pid_gone "$child" 30 || die "$name: backend $child survived SIGKILL"
  done
}

pg_status_instance() {
  local name="$1" dir port pid
  dir="$(pg_instance_dir "$name")"
  port="$(pg_instance_port "$name")"
  pid="$(pg_postmaster_pid "$dir")"
  if [[ -n "$pid" ]] && as_postgres "$PG_BIN/pg_isready" -q -h "$dir" -p "$port" </dev/null; then
    echo "$name: running (pid $pid, 127.0.0.1:$port, data $dir/data)"
  elif [[ -n "$pid" ]]; then
    echo "$name: starting or stuck (pid $pid, not answering)"
    return 1
  else
    echo "$name: stopped (data $dir/data)"
    return 1
  fi
}

pg_start() {
  id postgres >/dev/null 2>&1 ||
    die "no 'postgres' OS user: install PostgreSQL 15 (scripts/install-deps.sh)"
  [[ -x "$PG_BIN/initdb" ]] || die "$PG_BIN/initdb not found: install postgresql-15"
  ensure_password_file "$PG_PASSWORD_FILE"
  prepare_pg_root
  pg_start_instance pg
  pg_start_instance pg-disabled
}

# ---------------------------------------------------------------------------------------------
# unixODBC configuration and the environment file

# ---------------------------------------------------------------------------------------------
# RabbitMQ: one node of our own, everything of it under $RABBITMQ_DIR and on 127.0.0.1.

readonly RABBITMQ_BIN=/usr/lib/rabbitmq/bin

# Runs a RabbitMQ program with this node's environment.
rabbitmq_env() {
  env HOME="$RABBITMQ_DIR" RABBITMQ_NODENAME="$RABBITMQ_NODE" \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$RABBITMQ_PORT" \
    RABBITMQ_DIST_PORT="$RABBITMQ_DIST_PORT" ERL_EPMD_PORT="$RABBITMQ_EPMD_PORT" \
    ERL_EPMD_ADDRESS=127.0.0.1 \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
    RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
    RABBITMQ_MNESIA_BASE="$RABBITMQ_DIR/data" RABBITMQ_LOG_BASE="$RABBITMQ_DIR/log" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$RABBITMQ_DIR/enabled_plugins" \
    RABBITMQ_PID_FILE="$RABBITMQ_DIR/rabbitmq.pid" \
    RABBITMQ_CONFIG_FILE="$RABBITMQ_DIR/rabbitmq" \
    RABBITMQ_ADVANCED_CONFIG_FILE="$RABBITMQ_DIR/advanced.config" "$@"
}
rabbitmqctl_node() { (cd / && rabbitmq_env "$RABBITMQ_BIN/rabbitmqctl" -n "$RABBITMQ_NODE" "$@"); }

rabbitmq_pid() {
  local pid
  pid="$(read_pid_file "$RABBITMQ_DIR/rabbitmq.pid")"
  # The node names itself after boot, so its command line shows only its home directory.
  if pid_matches "$pid" "-home $RABBITMQ_DIR "; then printf '%s' "$pid"; fi
}

rabbitmq_start() {
  [[ -x "$RABBITMQ_BIN/rabbitmq-server" ]] ||
    die "rabbitmq: $RABBITMQ_BIN/rabbitmq-server not found; run scripts/install-deps.sh"
  mkdir -p "$RABBITMQ_DIR/data" "$RABBITMQ_DIR/log"
  printf '[].\n' >"$RABBITMQ_DIR/enabled_plugins"
  if [[ -n "$(rabbitmq_pid)" ]]; then
    log "rabbitmq: already running (pid $(rabbitmq_pid), 127.0.0.1:$RABBITMQ_PORT)"
  else
    rm -f "$RABBITMQ_DIR/rabbitmq.pid"  # stale, from a crash
    if port_in_use "$RABBITMQ_PORT"; then
      port_owner "$RABBITMQ_PORT" >&2
      die "rabbitmq: port $RABBITMQ_PORT on 127.0.0.1 is used by another process. Choose another with XA_SERVERS_RABBITMQ_PORT."
    fi
    log "rabbitmq: starting on 127.0.0.1:$RABBITMQ_PORT"
    # setsid + closed fds: the node must not hold the caller's terminal, pipes or lock. The
    # fds are redirected for the whole subshell: it runs a function, which bash runs in a
    # waiting subshell whose saved copies of the caller's fds would stay open as long as the
    # node lives (a caller reading our output, or the next servers.sh, would wait forever).
    (exec 9>&- </dev/null >>"$RABBITMQ_DIR/log/server.out" 2>&1
     cd / && rabbitmq_env setsid "$RABBITMQ_BIN/rabbitmq-server" &)
    local deadline=$((SECONDS + READY_TIMEOUT_S))
    while [[ ! -s "$RABBITMQ_DIR/rabbitmq.pid" ]]; do
      ((SECONDS < deadline)) || { show_log_tail "$RABBITMQ_DIR/log/server.out"; die "rabbitmq: no pid file"; }
      sleep 0.2
    done
    rabbitmqctl_node wait --timeout "$READY_TIMEOUT_S" "$RABBITMQ_DIR/rabbitmq.pid" >/dev/null 2>&1 ||
      { show_log_tail "$RABBITMQ_DIR/log/server.out"; die "rabbitmq: not ready after ${READY_TIMEOUT_S}s"; }
  fi
  rabbitmq_ensure_account
  log "rabbitmq: ready (pid $(rabbitmq_pid), 127.0.0.1:$RABBITMQ_PORT)"
}

# The xa_msg user with the generated password (read by rabbitmqctl from stdin, never on a
# command line), all permissions on vhost "/"; the default guest user removed.
rabbitmq_ensure_account() {
  ensure_password_file "$RABBITMQ_PASSWORD_FILE"
  if ! rabbitmqctl_node list_users --silent 2>/dev/null | grep -q '^xa_msg\b'; then
    rabbitmqctl_node add_user xa_msg <"$RABBITMQ_PASSWORD_FILE" >/dev/null ||
      die "rabbitmq: cannot create user xa_msg"
  fi
  rabbitmqctl_node set_permissions -p / xa_msg '.*' '.*' '.*' >/dev/null ||
    die "rabbitmq: cannot grant xa_msg its permissions"
  if rabbitmqctl_node list_users --silent 2>/dev/null | grep -q '^guest\b'; then
    rabbitmqctl_node delete_user guest >/dev/null || true
  fi
}

rabbitmq_stop() {
  local pid
  pid="$(rabbitmq_pid)"
  if [[ -n "$pid" ]]; then
    log "rabbitmq: stopping (pid $pid)"
    rabbitmqctl_node shutdown >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
    wait_pid_gone "$pid" "$STOP_TIMEOUT_S" || { kill -9 "$pid" 2>/dev/null || true; }
  fi
  # Its epmd outlives the node: stop it too (ours alone: its own port).
  ERL_EPMD_PORT="$RABBITMQ_EPMD_PORT" epmd -kill >/dev/null 2>&1 || true
}

rabbitmq_kill() {
  local pid
  pid="$(rabbitmq_pid)"
  [[ -n "$pid" ]] || { log "rabbitmq: not running"; return 0; }
  log "rabbitmq: SIGKILL (pid $pid)"
  kill -9 "$pid"
  wait_pid_gone "$pid" "$STOP_TIMEOUT_S" || die "rabbitmq: pid $pid survives SIGKILL"
}

rabbitmq_status() {
  local pid
  pid="$(rabbitmq_pid)"
  if [[ -n "$pid" ]]; then
    echo "rabbitmq: running (pid $pid, 127.0.0.1:$RABBITMQ_PORT, data $RABBITMQ_DIR/data)"
  else
    echo "rabbitmq: stopped (data $RABBITMQ_DIR/data)"
    return 1
  fi
}

# ---------------------------------------------------------------------------------------------
# Redis: xa-msgd's Redis message store. One redis-server of our own, everything of it under
# $REDIS_DIR, on 127.0.0.1, configured only by the redis.conf written below (not
# /etc/redis/redis.conf; a system redis of the Debian package, on 6379 under systemd, is neither
# needed nor touched).

# A redis.conf argument in double quotes (the config parser's escapes).
redis_conf_quote() {
  local s="${1//\\/\\\\}"
  s="${s//\"/\\\"}"
  s="${s//$'\n'/\\n}"
  printf '"%s"' "$s"
}

# Written on every start, mode 0600: it carries the password (requirepass), which therefore
# never appears on redis-server's command line.
redis_write_config() {
  local password
  password="$(<"$REDIS_PASSWORD_FILE")"
  (umask 077 && cat >"$REDIS_CONF.tmp" <<EOF
# Written by scripts/servers.sh on every start; do not edit. Mode 0600: holds the password.
bind 127.0.0.1
protected-mode yes
port $REDIS_PORT
# Run in the foreground under setsid (like mariadbd): the pid file is written by redis-server
# itself, and its process title names this file, so the pid is checked to be ours.
daemonize no
supervised no
pidfile $(redis_conf_quote "$REDIS_PID")
proc-title-template "{title} {listen-addr} {server-mode} {config-file}"
dir $(redis_conf_quote "$REDIS_DATA")
logfile $(redis_conf_quote "$REDIS_LOG")
loglevel notice
requirepass $password
# xa-msgd's store refuses anything less durable: every write is fsync'ed to the AOF before the
# reply, so a SIGKILL (kill-redis) loses nothing acknowledged.
appendonly yes
appendfsync always
aof-load-truncated yes
# RDB snapshots are kept at Redis's defaults beside the AOF (dump.rdb in the data dir; restarts
# load the AOF, which stays the source of truth); no save "" here.
save 3600 1 300 100 60 10000
# The store's messages must never be evicted: writes fail with OOM instead.
maxmemory-policy noeviction
EOF
  )
  chmod 0600 "$REDIS_CONF.tmp"
  mv -f "$REDIS_CONF.tmp" "$REDIS_CONF"
}

redis_pid() {
  local pid
  pid="$(read_pid_file "$REDIS_PID")"
  # The process title (proc-title-template above) ends with the config file's path.
  if pid_matches "$pid" "$REDIS_CONF"; then printf '%s' "$pid"; fi
}

# redis-cli against our server; the password through REDISCLI_AUTH (environment), never argv.
redis_cli() {
  local password=""
  [[ -r "$REDIS_PASSWORD_FILE" ]] && password="$(<"$REDIS_PASSWORD_FILE")"
  REDISCLI_AUTH="$password" timeout 10 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@" </dev/null
}

redis_ping() { [[ "$(redis_cli ping 2>/dev/null)" == PONG ]]; }

redis_start() {
  command -v redis-server >/dev/null 2>&1 || die "redis: redis-server not found; run scripts/install-deps.sh"
  command -v redis-cli >/dev/null 2>&1 || die "redis: redis-cli not found; run scripts/install-deps.sh"
  mkdir -p "$REDIS_DATA"
  chmod 0700 "$REDIS_DIR" "$REDIS_DATA"
  ensure_password_file "$REDIS_PASSWORD_FILE"
  redis_write_config

  local pid started_pid=""
  pid="$(redis_pid)"
  if [[ -n "$pid" ]]; then
    if redis_ping; then
      log "redis: already running (pid $pid, 127.0.0.1:$REDIS_PORT)"
      return
    fi
    log "redis: pid $pid is alive but not answering yet; waiting"
  else
    if port_in_use "$REDIS_PORT"; then
      port_owner "$REDIS_PORT" >&2
      die "redis: port $REDIS_PORT on 127.0.0.1 is used by another process, not by the server of $SERVERS_DIR. Stop that server (its own scripts/servers.sh stop) or choose another port with XA_SERVERS_REDIS_PORT."
    fi
    rm -f "$REDIS_PID"  # stale, from a crash
    log "redis: starting on 127.0.0.1:$REDIS_PORT"
    # setsid + closed fds: the server must not hold the caller's terminal, pipes or lock.
    setsid "$(command -v redis-server)" "$REDIS_CONF" \
      </dev/null >>"$REDIS_DIR/redis.out" 2>&1 9>&- &
    started_pid=$!
  fi

  # PING answers -LOADING while the AOF is replayed, PONG once the data is back.
  local deadline=$((SECONDS + READY_TIMEOUT_S))
  until redis_ping; do
    if ((SECONDS >= deadline)); then
      show_log_tail "$REDIS_LOG"
      die "redis: not ready after ${READY_TIMEOUT_S}s"
    fi
    if [[ -n "$started_pid" ]] && ! kill -0 "$started_pid" 2>/dev/null && [[ -z "$(redis_pid)" ]]; then
      show_log_tail "$REDIS_DIR/redis.out"
      show_log_tail "$REDIS_LOG"
      die "redis: the server exited during start-up"
    fi
    sleep 0.1
  done
  log "redis: ready (pid $(redis_pid), 127.0.0.1:$REDIS_PORT)"
}

# SIGTERM is Redis's clean shutdown: the AOF is flushed and fsync'ed, an RDB snapshot saved.
redis_stop() {
  local pid
  pid="$(redis_pid)"
  if [[ -z "$pid" ]]; then
    log "redis: not running"
    rm -f "$REDIS_PID"
    return
  fi
  log "redis: stopping (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_pid_gone "$pid" "$STOP_TIMEOUT_S"; then
    show_log_tail "$REDIS_LOG"
    die "redis: pid $pid did not stop within ${STOP_TIMEOUT_S}s"
  fi
  log "redis: stopped"
}

redis_kill() {
  local pid
  pid="$(redis_pid)"
  [[ -n "$pid" ]] || die "redis: not running, nothing to kill"
  log "redis: SIGKILL pid $pid"
  kill -KILL "$pid"
  wait_pid_gone "$pid" 30 || die "redis: pid $pid survived SIGKILL"
}

redis_status() {
  local pid
  pid="$(redis_pid)"
  if [[ -n "$pid" ]] && redis_ping; then
    echo "redis: running (pid $pid, 127.0.0.1:$REDIS_PORT, data $REDIS_DATA)"
  elif [[ -n "$pid" ]]; then
    echo "redis: starting or stuck (pid $pid, not answering)"
    return 1
  else
    echo "redis: stopped (data $REDIS_DATA)"
    return 1
  fi
}

driver_path() {
  local package="$1" file="$2" default="$3" found=""
  found="$(dpkg -L "$package" 2>/dev/null | grep "/$file\$" | head -n 1 || true)"
  printf '%s' "${found:-$default}"
}

write_odbc_config() {
  mkdir -p "$ODBC_DIR"
  local maodbc psqlodbc
  maodbc="$(driver_path odbc-mariadb libmaodbc.so /usr/lib/x86_64-linux-gnu/odbc/libmaodbc.so)"
  psqlodbc="$(driver_path odbc-postgresql psqlodbcw.so /usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so)"
  [[ -f "$maodbc" ]] || log "warning: MariaDB ODBC driver $maodbc not found (package odbc-mariadb)"
  [[ -f "$psqlodbc" ]] || log "warning: PostgreSQL ODBC driver $psqlodbc not found (package odbc-postgresql)"
  cat >"$ODBC_DIR/odbcinst.ini.tmp" <<EOF
; Written by scripts/servers.sh. Project-local: used through ODBCSYSINI=$ODBC_DIR.
[MariaDB]
Description = MariaDB Connector/ODBC
Driver = $maodbc

[PostgreSQL Unicode]
Description = PostgreSQL ODBC driver (Unicode)
Driver = $psqlodbc
EOF
  # No credentials here: the drivers get UID/PWD in the connection string at connect time.
  cat >"$ODBC_DIR/odbc.ini.tmp" <<EOF
; Written by scripts/servers.sh. Used through ODBCINI=$ODBC_DIR/odbc.ini. No passwords.
[xa_mariadb]
Description = xa test MariaDB
Driver = MariaDB
Server = 127.0.0.1
Port = $MARIADB_PORT
Database = $TEST_DB

[xa_pg]
Description = xa test PostgreSQL
Driver = PostgreSQL Unicode
Servername = 127.0.0.1
Port = $PG_PORT
Database = $TEST_DB

[xa_pg_disabled]
Description = xa test PostgreSQL with max_prepared_transactions = 0
Driver = PostgreSQL Unicode
Servername = 127.0.0.1
Port = $PG_DISABLED_PORT
Database = $TEST_DB
EOF
  mv -f "$ODBC_DIR/odbcinst.ini.tmp" "$ODBC_DIR/odbcinst.ini"
  mv -f "$ODBC_DIR/odbc.ini.tmp" "$ODBC_DIR/odbc.ini"
}

write_env_file() {
  local -a vars=(
    XA_TEST_MARIADB_HOST=127.0.0.1
    "XA_TEST_MARIADB_PORT=$MARIADB_PORT"
    "XA_TEST_MARIADB_USER=$TM_USER"
    "XA_TEST_MARIADB_PASSWORD_FILE=$MARIADB_PASSWORD_FILE"
    "XA_TEST_MARIADB_DATABASE=$TEST_DB"
    "XA_TEST_MARIADB_SOCKET=$MARIADB_SOCK"
    XA_TEST_MARIADB_ADMIN_USER=root
    XA_TEST_PG_HOST=127.0.0.1
    "XA_TEST_PG_PORT=$PG_PORT"
    "XA_TEST_PG_USER=$TM_USER"
    "XA_TEST_PG_PASSWORD_FILE=$PG_PASSWORD_FILE"
    "XA_TEST_PG_DATABASE=$TEST_DB"
    XA_TEST_PG_ADMIN_USER=postgres
    "XA_TEST_PG_DISABLED_PORT=$PG_DISABLED_PORT"
    "ODBCSYSINI=$ODBC_DIR"
    "ODBCINI=$ODBC_DIR/odbc.ini"
    XA_TEST_ODBC_MARIADB_DSN=xa_mariadb
    XA_TEST_ODBC_PG_DSN=xa_pg
    XA_TEST_ODBC_PG_DISABLED_DSN=xa_pg_disabled
    XA_TEST_RABBITMQ_HOST=127.0.0.1
    "XA_TEST_RABBITMQ_PORT=$RABBITMQ_PORT"
    XA_TEST_RABBITMQ_USER=xa_msg
    "XA_TEST_RABBITMQ_PASSWORD_FILE=$RABBITMQ_PASSWORD_FILE"
    XA_TEST_REDIS_HOST=127.0.0.1
    "XA_TEST_REDIS_PORT=$REDIS_PORT"
    "XA_TEST_REDIS_PASSWORD_FILE=$REDIS_PASSWORD_FILE"
    "XA_TEST_SERVERS_SCRIPT=$SCRIPT_PATH"
    "XA_TEST_SERVERS_DIR=$SERVERS_DIR"
    # So that `servers.sh kill-mariadb` etc. run from a test act on these very servers.
    "XA_SERVERS_DIR=$SERVERS_DIR"
  )
  {
    echo "# Written by scripts/servers.sh start. Source it: . $ENV_FILE"
    echo "# Connection settings of the local test servers (see tests/testutil/db_env.h)."
    echo "# Passwords are not here: they are in the *_PASSWORD_FILE files (mode 0600)."
    local entry
    for entry in "${vars[@]}"; do
      printf 'export %s=%q\n' "${entry%%=*}" "${entry#*=}"
    done
  } >"$ENV_FILE.tmp"
  mv -f "$ENV_FILE.tmp" "$ENV_FILE"
}

# ---------------------------------------------------------------------------------------------

take_lock() {
  exec 9>"$SERVERS_DIR/.lock"
  flock -w 600 9 || die "another servers.sh holds $SERVERS_DIR/.lock for more than 600s"
}

main() {
  local command="${1:-}"
  case "$command" in
    -h | --help | help | "")
      usage
      [[ -n "$command" ]] || exit 2
      exit 0
      ;;
  esac
  [[ "$(id -u)" == 0 ]] || die "run as root (PostgreSQL must be run as the 'postgres' OS user)"
  resolve_paths
  case "$command" in
    start)
      take_lock
      resolve_pg_root
      record_ports
      mariadb_start
      pg_start
      rabbitmq_start
      redis_start
      write_odbc_config
      write_env_file
      log "all servers ready; environment: . $ENV_FILE"
      ;;
    stop)
      take_lock
      resolve_pg_root
      mariadb_stop
      pg_stop_instance pg
      pg_stop_instance pg-disabled
      rabbitmq_stop
      redis_stop
      ;;
    status)
      resolve_pg_root
      local rc=0
      mariadb_status || rc=1
      pg_status_instance pg || rc=1
      pg_status_instance pg-disabled || rc=1
      rabbitmq_status || rc=1
      redis_status || rc=1
      exit "$rc"
      ;;
    env)
      [[ -f "$ENV_FILE" ]] || die "$ENV_FILE does not exist yet; run: $SCRIPT_PATH start"
      cat "$ENV_FILE"
      ;;
    kill-mariadb)
      take_lock
      mariadb_kill
      ;;
    kill-pg)
      take_lock
      resolve_pg_root
      pg_kill_instance pg
      ;;
    kill-rabbitmq)
      take_lock
      rabbitmq_kill
      ;;
    stop-rabbitmq)
      take_lock
      rabbitmq_stop
      ;;
    kill-redis)
      take_lock
      redis_kill
      ;;
    stop-redis)
      take_lock
      redis_stop
      ;;
    stop-mariadb)
      take_lock
      mariadb_stop
      ;;
    stop-pg)
      take_lock
      resolve_pg_root
      pg_stop_instance pg
      ;;
    *)
      usage >&2
      die "unknown command '$command'"
      ;;
  esac
}

main "$@"
