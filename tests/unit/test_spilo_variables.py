"""configs/README.md's table of Spilo's variables is true: every 'same' or 'different' variable
changes what the entrypoint renders (or is refused with a line naming it), every 'unsupported'
one gets its warning line at start, every 'planned' one names its issue."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from howdah.entrypoint import render, settings, spilo
from howdah.entrypoint.errors import EnvError
from howdah.entrypoint.memory import sizing

README = Path(__file__).resolve().parents[2] / "configs" / "README.md"
FACTS = settings.Facts(hostname="node1", ip="172.20.0.5", memory=sizing(None), pg_majors=())
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
INI = "[databases]\n* = host=127.0.0.1\n[pgbouncer]\nlisten_port = 6432\n"
ETCD, ETCD3 = {"ETCD_HOST": "etcd:2379"}, {"ETCD3_HOST": "etcd:2379"}
K8S = {"DCS_ENABLE_KUBERNETES_API": "true", "KUBERNETES_SERVICE_HOST": "10.0.0.1"}
API_FILES = {"SSL_RESTAPI_CERTIFICATE_FILE": "/r.crt", "SSL_RESTAPI_PRIVATE_KEY_FILE": "/r.key"}
API_PEM = {"SSL_RESTAPI_CERTIFICATE": PEM, "SSL_RESTAPI_PRIVATE_KEY": PEM.replace("CERTIFICATE", "PRIVATE KEY")}
BASEBACKUP = {"CLONE_METHOD": "CLONE_WITH_BASEBACKUP", "CLONE_HOST": "old-primary", "CLONE_USER": "cloner"}
ARCHIVE_CLONE = {"CLONE_METHOD": "CLONE_WITH_WALE", "CLONE_SCOPE": "old"}
S3 = {"WAL_S3_BUCKET": "backups"}
STANDBY_S3 = {"STANDBY_WAL_S3_BUCKET": "prod-backups"}

# Read when it is needed, by the program named, and never written into a file.
RUNTIME = {"CLONE_PASSWORD": "bootstrap/clone_with_basebackup.py"}

# variable -> (the environment it is set in, its value)
EXAMPLES: dict[str, tuple[dict[str, str], str]] = {
    "SCOPE": ({}, "prod"), "PGVERSION": ({}, "16"), "PGPORT": ({}, "5433"), "APIPORT": ({}, "8009"),
    "PGHOME": ({}, "/data"), "PGROOT": ({}, "/data/root"), "PGDATA": ({}, "/data/pg"),
    "PGUSER_SUPERUSER": ({}, "root2"), "PGPASSWORD_SUPERUSER": ({}, "pw1"),
    "PGUSER_STANDBY": ({}, "rep"), "PGPASSWORD_STANDBY": ({}, "pw2"),
    "PGUSER_ADMIN": ({"PGBOUNCER": "true"}, "adm"), "PGPASSWORD_ADMIN": ({}, "pw3"), "USE_ADMIN": ({}, "true"),
    "ETCD_HOST": ({}, "etcd:2379"), "ETCD_HOSTS": ({}, "a:2379,b:2379"), "ETCD_URL": ({}, "http://etcd:2379"),
    "ETCD_PROXY": ({}, "http://proxy:2379"), "ETCD_DISCOVERY_DOMAIN": ({}, "example.com"),
    "ETCD_PROTOCOL": (ETCD, "https"), "ETCD_USERNAME": ({**ETCD, "ETCD_PASSWORD": "p"}, "u"),
    "ETCD_PASSWORD": ({**ETCD, "ETCD_USERNAME": "u"}, "p"), "ETCD_CACERT": (ETCD, "/ca.crt"),
    "ETCD_CERT": ({**ETCD, "ETCD_KEY": "/k"}, "/c.crt"), "ETCD_KEY": ({**ETCD, "ETCD_CERT": "/c.crt"}, "/k"),
    "ETCD3_HOST": ({}, "etcd:2379"), "ETCD3_HOSTS": ({}, "a:2379,b:2379"), "ETCD3_URL": ({}, "http://etcd:2379"),
    "ETCD3_PROXY": ({}, "http://proxy:2379"), "ETCD3_DISCOVERY_DOMAIN": ({}, "example.com"),
    "ETCD3_PROTOCOL": (ETCD3, "https"), "ETCD3_USERNAME": ({**ETCD3, "ETCD3_PASSWORD": "p"}, "u"),
    "ETCD3_PASSWORD": ({**ETCD3, "ETCD3_USERNAME": "u"}, "p"), "ETCD3_CACERT": (ETCD3, "/ca.crt"),
    "ETCD3_CERT": ({**ETCD3, "ETCD3_KEY": "/k"}, "/c.crt"), "ETCD3_KEY": ({**ETCD3, "ETCD3_CERT": "/c.crt"}, "/k"),
    "DCS_ENABLE_KUBERNETES_API": ({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, "true"),
    "KUBERNETES_ROLE_LABEL": (K8S, "pg-role"), "KUBERNETES_SCOPE_LABEL": (K8S, "cluster"),
    "KUBERNETES_LABELS": (K8S, '{"application": "db"}'), "KUBERNETES_USE_CONFIGMAPS": (K8S, "true"),
    "KUBERNETES_BYPASS_API_SERVICE": (K8S, "true"), "POD_NAMESPACE": (K8S, "pg"), "POD_IP": ({}, "10.1.1.1"),
    "NAMESPACE": ({}, "/other/"),
    "STANDBY_HOST": ({}, "remote"), "STANDBY_PORT": ({"STANDBY_HOST": "remote"}, "5433"),
    "STANDBY_PRIMARY_SLOT_NAME": ({"STANDBY_HOST": "remote"}, "standby_slot"),
    "SSL_CERTIFICATE_FILE": ({}, "/c.crt"), "SSL_PRIVATE_KEY_FILE": ({}, "/c.key"),
    "SSL_CA_FILE": ({}, "/ca.crt"), "SSL_CRL_FILE": ({}, "/c.crl"),
    "SSL_CERTIFICATE": ({}, PEM), "SSL_PRIVATE_KEY": ({}, PEM), "SSL_CA": ({}, PEM), "SSL_CRL": ({}, PEM),
    "SSL_RESTAPI_CERTIFICATE_FILE": ({"SSL_RESTAPI_PRIVATE_KEY_FILE": "/r.key"}, "/r.crt"),
    "SSL_RESTAPI_PRIVATE_KEY_FILE": ({"SSL_RESTAPI_CERTIFICATE_FILE": "/r.crt"}, "/r.key"),
    "SSL_RESTAPI_CA_FILE": (API_FILES, "/r-ca.crt"),
    "SSL_RESTAPI_CERTIFICATE": ({"SSL_RESTAPI_PRIVATE_KEY": PEM}, PEM),
    "SSL_RESTAPI_PRIVATE_KEY": ({"SSL_RESTAPI_CERTIFICATE": PEM}, PEM),
    "SSL_RESTAPI_CA": (API_PEM, PEM), "SSL_TEST_RELOAD": ({}, "true"),
    "RESTAPI_CONNECT_ADDRESS": ({}, "node1.pg.svc"), "INITDB_LOCALE": ({}, "C"),
    "CRONTAB": ({}, '["0 3 * * * vacuumdb -a"]'), "CALLBACK_SCRIPT": ({}, "/bin/true"),
    "EIP_ALLOCATION": ({}, "eipalloc-0123"), "SPILO_CONFIGURATION": ({}, "postgresql: {parameters: {work_mem: 8MB}}"),
    "PGBOUNCER_CONFIGURATION": ({}, INI), "PGBOUNCER_AUTHENTICATION": ({"PGBOUNCER": "true"}, '"app" "pw"'),
    "PGBOUNCER_AUTH": ({"PGBOUNCER": "true"}, '"app" "pw"'),
    **{name: ({k: v for k, v in BASEBACKUP.items() if k != name}, value) for name, value in BASEBACKUP.items()},
    "CLONE_PORT": (BASEBACKUP, "5433"), "CLONE_SCOPE": ({"CLONE_METHOD": "CLONE_WITH_WALE"}, "old"),
    "CLONE_TARGET_TIME": (ARCHIVE_CLONE, "2026-01-01 00:00:00+00:00"), "CLONE_TARGET_TIMELINE": (ARCHIVE_CLONE, "current"),
    "WAL_S3_BUCKET": ({}, "backups"), "AWS_ACCESS_KEY_ID": (S3, "AKIA"), "AWS_SECRET_ACCESS_KEY": ({**S3, "AWS_ACCESS_KEY_ID": "AKIA"}, "secret"),
    "AWS_REGION": (S3, "eu-west-1"), "AWS_ENDPOINT": (S3, "https://s3.local:9000"),
    "AWS_S3_FORCE_PATH_STYLE": (S3, "true"), "BACKUP_NUM_TO_RETAIN": (S3, "3"), "BACKUP_SCHEDULE": (S3, "30 2 * * *"),
    "WALE_BACKUP_THRESHOLD_MEGABYTES": (S3, "100"), "WALE_BACKUP_THRESHOLD_PERCENTAGE": (S3, "5"),
    "CLONE_TARGET_INCLUSIVE": ({**ARCHIVE_CLONE, "CLONE_TARGET_TIME": "2026-01-01 00:00:00+00:00"}, "false"),
    "STANDBY_WAL_S3_BUCKET": ({}, "prod-backups"),
    "STANDBY_AWS_ACCESS_KEY_ID": ({**STANDBY_S3, "STANDBY_AWS_SECRET_ACCESS_KEY": "s"}, "AKIA"),
    "STANDBY_AWS_SECRET_ACCESS_KEY": ({**STANDBY_S3, "STANDBY_AWS_ACCESS_KEY_ID": "AKIA"}, "s"),
    "STANDBY_AWS_REGION": (STANDBY_S3, "eu-west-1"), "STANDBY_AWS_ENDPOINT": (STANDBY_S3, "https://s3.local:9000"),
}


def table() -> list[tuple[str, str, str]]:
    """(variable, status, notes) for each variable named in the table's rows."""
    text = README.read_text()
    section = text[text.index("## Spilo's variables"):]
    section = section[:section.find("\n## ", 5)] if "\n## " in section[5:] else section
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            for name in re.findall(r"`([A-Z0-9_]+)`", cells[0]):
                rows.append((name, cells[1], cells[2]))
    return rows


ROWS = table()


def outcome(env: dict[str, str]) -> Any:
    env = {"SCOPE": "demo", **env}
    try:
        return {name: text for name, (text, _mode) in render.render_all(settings.load(env, FACTS)).items()}
    except EnvError as error:
        return ("error", error.line())


def test_the_table_is_there_and_complete() -> None:
    statuses = {status for _name, status, _notes in ROWS}
    assert statuses <= {"same", "different", "unsupported", "planned"}, statuses
    names = [name for name, _s, _n in ROWS]
    assert len(names) == len(set(names)), "a variable is listed twice"
    assert len(names) > 120
    for documented in ("SCOPE", "ETCD3_HOSTS", "SSL_RESTAPI_CA", "INITDB_LOCALE", "CRONTAB", "PGBOUNCER_AUTH",
                       "USE_ADMIN", "RESTAPI_CONNECT_ADDRESS", "PGHOME", "BACKUP_SCHEDULE", "LOG_S3_BUCKET"):
        assert documented in names


@pytest.mark.parametrize("name", [n for n, s, _ in ROWS if s in ("same", "different")])
def test_supported_variable_changes_what_is_rendered(name: str) -> None:
    if name in RUNTIME:
        assert f'"{name}"' in (README.parents[1] / RUNTIME[name]).read_text()
        return
    assert name in EXAMPLES, f"{name} is listed as supported: give it an example here"
    context, value = EXAMPLES[name]
    without, with_it = outcome(context), outcome({**context, name: value})
    if isinstance(without, tuple):  # a partner variable: the context alone is refused naming it
        assert name in without[1], f"the example's context fails on its own: {without}"
    if isinstance(with_it, tuple):
        assert name in with_it[1], f"{name}={value!r} is refused for another reason: {with_it[1]}"
    else:
        assert with_it != without, f"{name}={value!r} changes nothing that is rendered"


@pytest.mark.parametrize("name", [n for n, s, _ in ROWS if s == "unsupported"])
def test_unsupported_variable_gets_one_warning_naming_it(name: str) -> None:
    lines = spilo.notices({name: "x"})
    assert len(lines) == 1 and name in lines[0] and "\n" not in lines[0]
    assert outcome({name: "x"}) == outcome({}), "an ignored variable must not change the configuration"


@pytest.mark.parametrize("name", [n for n, s, _ in ROWS if s == "planned"])
def test_planned_variable_names_its_issue(name: str) -> None:
    notes = next(n for v, s, n in ROWS if v == name)
    assert re.search(r"#\d+", notes), f"{name} is planned: name the issue"


def test_warnings_only_for_variables_that_are_set() -> None:
    assert spilo.notices({"SCOPE": "x", "PGPORT": "5432", "LOG_S3_BUCKET": ""}) == []
    assert "SWIFT_REGION" in spilo.notices({"SWIFT_REGION": "r1"})[0]
