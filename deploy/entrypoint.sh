#!/bin/sh
# The image's entrypoint. Before the service starts:
#  - FACEID_<NAME>_FILE=/run/secrets/x sets FACEID_<NAME> from that file (compose secrets, Kubernetes secrets),
#    so no secret is baked into the image or written in the compose file;
#  - the data dir must be writable (a bind-mounted host folder is often root-owned): started as root, the
#    entrypoint gives it to faceid and drops to faceid; started as faceid, it says exactly what to do;
#  - the data dir's models/ is seeded from the ones converted at build time (a container never converts).
set -eu
DATA="${FACEID_DATA_DIR:-/data}"
SEED=/opt/faceid/models

for name in $(env | sed -n 's/^\(FACEID_[A-Z0-9_]*\)_FILE=.*/\1/p'); do
    file="$(printenv "${name}_FILE")"
    [ -r "$file" ] || { echo "faceid: ${name}_FILE names $file, which cannot be read" >&2; exit 78; }
    value="$(cat "$file")"
    export "$name=$value"
    unset "${name}_FILE"
done

if [ "$(id -u)" = 0 ]; then
    # Started as root on purpose (docker run --user 0, compose `user: "0"`): secrets are read (above), the
    # data dir is given to faceid, then the service runs as faceid. It never runs as root.
    mkdir -p "$DATA"
    [ "$(stat -c %u "$DATA")" = 10001 ] || chown -R faceid:faceid "$DATA"
    chmod 700 "$DATA"
    exec setpriv --reuid=faceid --regid=faceid --init-groups env HOME=/home/faceid "$0" "$@"
fi

probe="$DATA/.faceid-write-test.$$"
if ! (mkdir -p "$DATA" && : >"$probe") 2>/dev/null; then
    owner="$(stat -c '%u:%g' "$DATA" 2>/dev/null || echo '?')"
    cat >&2 <<MSG
faceid: cannot write to the data dir $DATA (owned by $owner; this container runs as uid $(id -u)).
  Either give the host folder you mounted there to uid $(id -u):
      sudo chown -R $(id -u):$(id -g) /path/on/the/host
  or start the container as root once, and it will do that itself and then run as uid $(id -u):
      docker run --user 0 ...        (compose: user: "0")
MSG
    exit 78
fi
rm -f "$probe"

if [ ! -d "$DATA/models" ] && [ -d "$SEED" ]; then
    cp -r "$SEED" "$DATA/models.seed.$$" && mv "$DATA/models.seed.$$" "$DATA/models" \
        || { rm -rf "$DATA/models.seed.$$"; echo "faceid: models not seeded; the service converts them" >&2; }
fi
exec "$@"
