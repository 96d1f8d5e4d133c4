#!/bin/sh
# Started as root (compose does): read the password from POSTGRES_PASSWORD_FILE (a root-only compose secret),
# give the data volume to postgres, and run the rest as postgres. First start on an empty volume: initdb, then
# the service's role and database. Later starts just run the server. Clients authenticate with scram-sha-256
# from the stack's private network; the port is not published.
set -eu
: "${POSTGRES_USER:=faceid}" "${POSTGRES_DB:=faceid}"
if [ "$(id -u)" = 0 ]; then
    if [ ! -s "$PGDATA/PG_VERSION" ]; then
        [ -r "${POSTGRES_PASSWORD_FILE:-}" ] || { echo "postgres: POSTGRES_PASSWORD_FILE is not readable" >&2; exit 78; }
        POSTGRES_PASSWORD="$(cat "$POSTGRES_PASSWORD_FILE")"
        export POSTGRES_PASSWORD
    fi
    chown -R postgres:postgres "$PGDATA" && chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    [ -n "${POSTGRES_PASSWORD:-}" ] || { echo "postgres: start as root with POSTGRES_PASSWORD_FILE set" >&2; exit 78; }
    initdb --auth-local=peer --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 -D "$PGDATA" >/dev/null
    echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    psql -v ON_ERROR_STOP=1 -q -d postgres -v user="$POSTGRES_USER" -v db="$POSTGRES_DB" -v pw="$POSTGRES_PASSWORD" <<'SQL'
CREATE ROLE :"user" LOGIN PASSWORD :'pw';
CREATE DATABASE :"db" OWNER :"user";
SQL
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    echo "postgres: initialised $PGDATA with role $POSTGRES_USER and database $POSTGRES_DB"
fi
unset POSTGRES_PASSWORD
exec postgres -D "$PGDATA" -c listen_addresses='*'
