#!/usr/bin/env bash
# Runs `docker compose` (the v2 plugin) when it exists, else the standalone `docker-compose`.
# Usage: tools/compose.sh [compose args...]   e.g. tools/compose.sh up -d
set -euo pipefail
if docker compose version >/dev/null 2>&1; then
  exec docker compose "$@"
elif command -v docker-compose >/dev/null 2>&1; then
  exec docker-compose "$@"
fi
echo "compose.sh: neither 'docker compose' nor 'docker-compose' is installed" >&2
exit 127
