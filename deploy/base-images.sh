#!/bin/sh
# Build the Debian base images the Dockerfiles start FROM, from Debian's own packages (debootstrap + docker import):
# no registry image is pulled, so it works where only Debian's archive is reachable. Each image is built once and
# kept (delete it with `docker rmi` to rebuild); a Debian mirror can be named with DEBIAN_MIRROR.
#   faceid/debian-python:bookworm   python3 + venv, the service's build and runtime stages
#   faceid/debian-nginx:bookworm    nginx, the reverse proxy in compose.yaml
#   faceid/debian-postgres:bookworm PostgreSQL 15, the records database in compose.yaml
set -eu
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
CACHE="${DEBOOTSTRAP_CACHE:-/var/cache/faceid-debootstrap}"

build() {  # build NAME PACKAGES
    name="faceid/debian-$1:$SUITE"
    if docker image inspect "$name" >/dev/null 2>&1; then
        echo "$name: present"; return 0
    fi
    root="$(mktemp -d /var/tmp/faceid-rootfs.XXXXXX)"
    mkdir -p "$CACHE"
    echo "$name: debootstrap $SUITE with $2"
    debootstrap --variant=minbase --cache-dir="$CACHE" --include="$2" "$SUITE" "$root" "$MIRROR" >"$root.log" 2>&1 \
        || { tail -20 "$root.log" >&2; rm -rf "$root" "$root.log"; exit 1; }
    # Nothing an image needs: apt's lists and caches, docs, man pages, locales other than C.
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
        "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
    tar -C "$root" -c . | docker import -c 'ENV LANG=C.UTF-8' -c 'CMD ["/bin/bash"]' - "$name" >/dev/null
    rm -rf "$root" "$root.log"
    echo "$name: built"
}

command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install -y debootstrap" >&2; exit 1; }
build python python3,python3-venv,ca-certificates
build nginx nginx-light,ca-certificates
build postgres postgresql-15
