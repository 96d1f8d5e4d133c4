#!/bin/sh
# Random secrets for compose.yaml in deploy/secrets/ (owner-only, never committed): the PostgreSQL password,
# the database URL that carries it, and the /metrics bearer token. Existing files are kept.
set -eu
dir="$(dirname "$0")/secrets"
mkdir -p "$dir" && chmod 700 "$dir"
umask 077
random() { python3 -c 'import secrets; print(secrets.token_urlsafe(24))'; }
[ -s "$dir/postgres_password" ] || random >"$dir/postgres_password"
[ -s "$dir/database_url" ] || printf 'postgresql+psycopg://faceid:%s@db:5432/faceid\n' "$(cat "$dir/postgres_password")" >"$dir/database_url"
[ -s "$dir/metrics_token" ] || random >"$dir/metrics_token"
echo "secrets in $dir: $(ls "$dir" | tr '\n' ' ')"
