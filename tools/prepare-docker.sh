#!/usr/bin/env bash
# Gets a fresh Docker host ready for `docker compose up`:
#  - the base image debian:trixie-slim (built locally by debootstrap when it
#    cannot be pulled: there may be no registry);
#  - the `docker compose` command: where only the standalone docker-compose is
#    installed, a small CLI plugin that hands `docker compose ...` to it.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! docker info >/dev/null 2>&1; then
  echo "prepare-docker: no Docker engine answers (is dockerd running?)" >&2
  exit 1
fi
if ! docker compose version >/dev/null 2>&1; then
  if ! command -v docker-compose >/dev/null 2>&1; then
    echo "prepare-docker: installing docker-compose from Debian" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
  fi
  dir=/usr/local/lib/docker/cli-plugins
  mkdir -p "$dir"
  cat >"$dir/docker-compose" <<'SHIM'
#!/bin/sh
# `docker compose` handed to the standalone docker-compose (installed by howdah's tools).
if [ "$1" = docker-cli-plugin-metadata ]; then
  printf '{"SchemaVersion":"0.1.0","Vendor":"howdah","Version":"%s","ShortDescription":"docker-compose v1 as docker compose"}\n' \
    "$(docker-compose version --short 2>/dev/null)"
  exit 0
fi
shift  # the plugin name, "compose"
exec docker-compose "$@"
SHIM
  chmod 755 "$dir/docker-compose"
  docker compose version >/dev/null 2>&1 && echo "prepare-docker: 'docker compose' now runs docker-compose" >&2
fi
tools/ensure-base-image.sh
