#!/usr/bin/env bash
# Installs everything the tests need on a fresh Debian bookworm host: the real
# servers from Debian's packages and a virtualenv (.venv) with the test deps.
# Idempotent and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
have() { command -v "$1" >/dev/null 2>&1; }
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15 postgresql-contrib)
have etcd || need+=(etcd-server)
have etcdctl || need+=(etcd-client)
have haproxy || need+=(haproxy)
have pgbouncer || need+=(pgbouncer)
have pgbackrest || need+=(pgbackrest)
have wrk || need+=(wrk)
have debootstrap || need+=(debootstrap)
[ -f /usr/lib/python3.11/ensurepip/__init__.py ] || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian starts these as services on install; the tests run their own. Stop only
# the services' own processes: `service etcd stop` would match every etcd binary
# on the host, test clusters included.
for svc in postgresql pgbouncer haproxy; do
  (systemctl stop "$svc" 2>/dev/null || service "$svc" stop 2>/dev/null || true) >/dev/null 2>&1
done
systemctl stop etcd >/dev/null 2>&1 || true
pkill -x etcd -u etcd 2>/dev/null || true

# Debian's interpreter: the agents run as the postgres user in the tests, and
# an interpreter under /root (pyenv) is out of that user's reach.
PY=${PYTHON:-/usr/bin/python3}
if [ -x .venv/bin/python ] && [ "$(readlink -f .venv/bin/python)" != "$(readlink -f "$PY")" ]; then
  echo "setup: rebuilding .venv on $PY"
  rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.req-$(sha1sum requirements-dev.txt pyproject.toml | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -r requirements-dev.txt
  .venv/bin/pip install -q --no-deps -e .
  rm -f .venv/.req-*; touch "$stamp"
fi
# Patroni 4.1.5 for the side-by-side tests (every tier compares with it).
bench/setup.sh >/dev/null
echo "setup: ok"
