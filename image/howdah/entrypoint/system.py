"""Side effects of starting a container: facts about it, users, directories, files, TLS.

Everything here touches the real system; the pure parts live in settings/render.
"""
from __future__ import annotations

import os
import pwd
import socket
import subprocess
import sys
import time
from pathlib import Path

from . import memory, pgversion
from .render import Files, ssl_paths
from .settings import Facts, Settings

POSTGRES = "postgres"


def facts() -> Facts:
    return Facts(hostname=socket.gethostname(), ip=container_ip(), memory=memory.detect(kubernetes=bool(os.environ.get("KUBERNETES_SERVICE_HOST"))),
                 pg_majors=pgversion.installed_majors(), read_data_major=pgversion.data_major,
                 locales=available_locales())


def nudge_when_listening(path: str, timeout: float = 15.0) -> int:
    """Fork a child that connects once to the unix socket at `path` as soon as it accepts,
    then exits; returns the child's pid (0 in no process: the child never returns).

    supervisord spawns its programs only after its first poll of its sockets, which waits
    up to a second when nothing happens on them: one connection to its control socket ends
    that wait, so the agent starts about a second sooner.  The child becomes supervisord's
    (it is forked just before the exec) and supervisord reaps it."""
    pid = os.fork()
    if pid:
        return pid
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                    sock.connect(path)
                break
            except OSError:
                time.sleep(0.02)
    finally:
        os._exit(0)


def container_ip() -> str:
    """The address other containers reach us on: the host name's address, else the
    source address of the default route, else 127.0.0.1."""
    try:
        address = socket.gethostbyname(socket.gethostname())
        if not address.startswith("127."):
            return address
    except OSError:
        pass
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent, only a route lookup
            return str(probe.getsockname()[0])
    except OSError:
        return "127.0.0.1"


NSS_WRAPPER = "libnss_wrapper.so"


def ensure_passwd_entry(home: str, run_dir: str | None = None) -> None:
    """OpenShift runs the image as a random UID with no passwd entry; initdb and ssh-less
    tools need one.  /etc/passwd is not writable (a writable one is a path to root), so the
    entry goes into a copy in the run directory that nss_wrapper (LD_PRELOAD, inherited by
    every child) serves instead of /etc/passwd."""
    uid = os.getuid()
    try:
        pwd.getpwuid(uid)
        return
    except KeyError:
        pass
    name = f"{POSTGRES}-{uid}"
    os.environ.setdefault("HOME", home)
    os.environ["USER"] = os.environ["LOGNAME"] = name
    run_dir = run_dir or os.environ.get("HOWDAH_RUN_DIR") or "/run/howdah"
    line = f"{name}:x:{uid}:{os.getgid()}:Howdah (random UID):{home}:/bin/bash\n"
    try:
        os.makedirs(run_dir, exist_ok=True)
        with open("/etc/passwd", encoding="utf-8") as system_passwd:
            passwd = system_passwd.read()
        target = os.path.join(run_dir, "passwd")
        temp = target + ".tmp"
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(passwd if passwd.endswith("\n") else passwd + "\n")
            handle.write(line)
        os.chmod(temp, 0o644)
        os.replace(temp, target)
    except OSError as exc:
        print(f"howdah-entrypoint: warning: uid {uid} has no passwd entry and {run_dir} is not writable ({exc})",
              file=sys.stderr)
        return
    os.environ["NSS_WRAPPER_PASSWD"] = target
    os.environ["NSS_WRAPPER_GROUP"] = "/etc/group"
    preload = os.environ.get("LD_PRELOAD", "")
    if NSS_WRAPPER not in preload.split():
        os.environ["LD_PRELOAD"] = f"{preload} {NSS_WRAPPER}".strip()


def drop_root(paths: list[str]) -> None:
    """Started as root (docker run --user 0): hand the data paths to postgres and become it."""
    if os.getuid() != 0:
        return
    entry = pwd.getpwnam(POSTGRES)
    for path in paths:
        os.makedirs(path, exist_ok=True)
        subprocess.run(["chown", "-R", f"{entry.pw_uid}:0", path], check=False)
    os.setgroups([0])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    os.environ.update(HOME=entry.pw_dir, USER=POSTGRES, LOGNAME=POSTGRES)


def stale_pidfile(pgdata: str, proc: Path = Path("/proc")) -> bool:
    """True when PGDATA holds a postmaster.pid whose PID is not a live postgres here.

    After `docker kill` the file survives in the volume, and in the new container's fresh PID
    namespace its PID often belongs to another process (pgbouncer, etcd, the agent): PostgreSQL
    then refuses to start ("lock file already exists").  At container start no postmaster of
    ours can be running yet, so a file naming anything but a postgres process is stale.
    """
    try:
        first = (Path(pgdata) / "postmaster.pid").read_text().split("\n", 1)[0].strip()
    except (OSError, UnicodeDecodeError):
        return False
    if not first.isdigit():
        return True
    try:
        comm = (proc / first / "comm").read_text().strip()
    except OSError:
        return True
    return comm not in ("postgres", "postmaster")


LOCK_NAME = ".howdah-volume.lock"


def lock_volume(volume: str) -> int:
    """Take the volume's lock for the life of the container (the fd is inherited by supervisord
    and its children, so the lock lives as long as any of them).

    Two containers on one volume each see only their own PID namespace, so the second would take
    the first's postmaster.pid for a stale one; the kernel's flock on a file in the volume is
    shared by both, and the second stops here instead."""
    import fcntl

    from .errors import EnvError

    os.makedirs(volume, exist_ok=True)
    fd = os.open(os.path.join(volume, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise EnvError("HOME_DIR", f"the volume {volume} is in use by another container (it holds {LOCK_NAME})",
                       "give every container its own volume; PostgreSQL was not started") from None
    os.set_inheritable(fd, True)
    return fd


def remove_stale_pidfile(pgdata: str) -> None:
    if stale_pidfile(pgdata):
        os.replace(Path(pgdata) / "postmaster.pid", Path(pgdata) / "postmaster.pid.stale")
        print("howdah-entrypoint: moved a stale postmaster.pid aside (left by a killed container)", file=sys.stderr)


def prepare_dirs(s: Settings) -> None:
    for directory in (s.run_dir, f"{s.run_dir}/log", f"{s.run_dir}/ssl", f"{s.run_dir}/pgbackrest",
                      s.pgroot, "/var/run/postgresql", *([s.pgbouncer_dir] if s.pgbouncer else [])):
        os.makedirs(directory, exist_ok=True)
    os.chmod(s.pgroot, 0o700)


def write_files(run_dir: str, files: Files) -> None:
    """Write each file atomically (temp file + rename) with its mode."""
    for name, (text, mode) in files.items():
        target = Path(run_dir) / name
        temp = target.with_name(f".{target.name}.tmp")  # a name may be an absolute path
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temp, mode)
        os.replace(temp, target)


def prepare_ssl(s: Settings) -> None:
    """PEM text in Spilo's SSL_* variables is written to its file; no certificate at all for
    PostgreSQL gets a self-signed one (kept across restarts of the same container)."""
    for path, text, mode in s.tls.writes:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        write_files(os.path.dirname(path) or ".", {os.path.basename(path): (text, mode)})
    cert_path, key_path = ssl_paths(s)
    if os.path.exists(cert_path) and os.path.exists(key_path):
        return
    subprocess.run(
        ["openssl", "req", "-nodes", "-new", "-x509", "-days", "3650", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-subj", f"/CN={s.name}", "-keyout", key_path, "-out", cert_path],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.chmod(key_path, 0o600)


def available_locales() -> tuple[str, ...]:
    """What `locale -a` lists (empty when it cannot run: INITDB_LOCALE is then not checked)."""
    try:
        out = subprocess.run(["locale", "-a"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(line.strip() for line in out.stdout.splitlines() if line.strip())
