#!/usr/bin/env bash
# Creates bench/.venv-patroni: Patroni 4.1.5 (etcd extra) from PyPI, for the
# side-by-side benchmarks and the harness self-test.
# The agent runs as the `postgres` OS user, so the virtualenv is built on
# Debian's /usr/bin/python3 (an interpreter under /root would not be reachable
# by that user). Idempotent: a stamp file records the installed version.
set -euo pipefail
cd "$(dirname "$0")"
VENV=.venv-patroni
PATRONI_VERSION=4.1.5
PY=${PATRONI_PYTHON:-/usr/bin/python3}
stamp="$VENV/.installed-patroni-$PATRONI_VERSION"
if [ -f "$stamp" ] && [ -x "$VENV/bin/patroni" ]; then
  echo "setup: $VENV ok (patroni $PATRONI_VERSION)"
  exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --upgrade pip >/dev/null
"$VENV/bin/pip" install -q "patroni[etcd]==$PATRONI_VERSION" psycopg2-binary
"$VENV/bin/patroni" --version
touch "$stamp"
echo "setup: $VENV ok (patroni $PATRONI_VERSION)"
