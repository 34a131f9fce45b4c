"""`howdah-entrypoint [ROLE|COMMAND ...]` - the image's ENTRYPOINT.

* no argument (or ``howdah``): validate the environment, render every file into the run
  directory, then exec supervisord (which runs the agent, pgbouncer and, with no DCS
  configured, a local etcd);
* ``haproxy``: render haproxy.cfg from HAPROXY_* and exec HAProxy;
* ``render``: validate and render only, print the run directory's files and exit;
* ``etcd-auth``: turn etcd's authentication on for the agents, once (see etcd_auth.py);
* anything else (``etcd ...``, ``bash``, ``psql ...``): exec it as given.

A bad variable prints ONE line naming it and the fix, and exits 2 before anything is written.
"""
from __future__ import annotations

import os
import sys
from typing import NoReturn, Sequence

from . import credentials, etcd_auth, haproxy, render, settings, spilo, system
from .errors import EnvError


def fail(error: EnvError) -> NoReturn:
    print(error.line(), file=sys.stderr, flush=True)
    sys.exit(2)


def prepare_node() -> settings.Settings:
    """Validate first (nothing touched on error), then become postgres, then write."""
    env = dict(os.environ)
    s = settings.load(env, system.facts())
    # every template and overlay renders, and the agent would accept its config, before
    # anything is touched (the passwords still to generate are stand-ins here)
    files = render.render_all(credentials.stand_ins(s))
    render.check_agent_config(files["howdah.yml"][0], env)
    system.drop_root([s.home + "/pgdata", s.run_dir, "/var/run/postgresql"])
    system.ensure_passwd_entry(s.home, s.run_dir)
    system.prepare_dirs(s)
    system.lock_volume(s.home + "/pgdata")  # a second container on this volume stops here
    s = credentials.resolve(s)  # unset passwords: generated once, kept in the volume
    os.environ["HOWDAH_CREDENTIALS"] = str(credentials.path(s))  # the file's path, for post-bootstrap
    files = render.render_all(s)
    system.remove_stale_pidfile(s.pgdata)
    system.write_files(s.run_dir, files)
    system.prepare_ssl(s)
    for line in spilo.notices(env):
        print(line, file=sys.stderr)
    for note in s.notes:  # how WAL-E/WAL-G/S3 variables were mapped onto pgBackRest
        print(f"howdah-entrypoint: {note}", file=sys.stderr, flush=True)
    return s


def run_node() -> NoReturn:
    s = prepare_node()
    print(f"howdah-entrypoint: node {s.name} of {s.scope}, DCS {s.dcs.kind}, "
          f"connect {s.connect_host}:{s.pgport}, shared_buffers {s.memory.shared_buffers}", file=sys.stderr, flush=True)
    conf = f"{s.run_dir}/supervisord.conf"
    system.nudge_when_listening(f"{s.run_dir}/supervisor.sock")
    os.execvp("supervisord", ["supervisord", "--nodaemon", "--configuration", conf])


def run_haproxy(extra: Sequence[str]) -> NoReturn:
    h = haproxy.load(dict(os.environ))
    run_dir = os.environ.get("HOWDAH_RUN_DIR", settings.DEFAULT_RUN_DIR)
    text = haproxy.render(h)
    system.drop_root([run_dir])
    system.ensure_passwd_entry(settings.DEFAULT_HOME)
    os.makedirs(run_dir, exist_ok=True)
    system.write_files(run_dir, {"haproxy.cfg": (text, 0o644)})
    os.execvp("haproxy", ["haproxy", "-W", "-db", "-f", f"{run_dir}/haproxy.cfg", *extra])


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if not args or args[0] in ("howdah", "supervisord"):
            run_node()
        elif args[0] == "haproxy":
            run_haproxy(args[1:])
        elif args[0] == "etcd-auth":
            sys.exit(etcd_auth.main())
        elif args[0] == "render":
            s = prepare_node()
            for name in sorted(os.listdir(s.run_dir)):
                print(f"{s.run_dir}/{name}")
        else:
            if os.getuid() != 0:
                system.ensure_passwd_entry(settings.DEFAULT_HOME)
            os.execvp(args[0], args)
    except EnvError as error:
        fail(error)
    except FileNotFoundError as error:
        print(f"howdah-entrypoint: {error}", file=sys.stderr, flush=True)
        sys.exit(127)


if __name__ == "__main__":
    main()
