"""Rendering: env dict in, file texts and config dicts out."""
from __future__ import annotations

import configparser

import pytest
import yaml

from howdah.entrypoint import haproxy, render, settings
from howdah.entrypoint.errors import EnvError
from howdah.entrypoint.memory import sizing

GiB = 1024 ** 3
FACTS = settings.Facts(hostname="node1", ip="172.20.0.5", memory=sizing(2 * GiB))


def files(**env: str) -> dict[str, str]:
    return {name: text for name, (text, _mode) in render.render_all(settings.load(env, FACTS)).items()}


def agent(**env: str) -> dict:
    return yaml.safe_load(files(**env)["howdah.yml"])


def test_cluster_node_config() -> None:
    conf = agent(SCOPE="prod", ETCD_HOSTS="etcd1:2379,etcd2:2379", PGPASSWORD_SUPERUSER='p"w: x#')
    assert conf["scope"] == "prod" and conf["name"] == "node1"
    assert conf["etcd"] == {"hosts": ["etcd1:2379", "etcd2:2379"]}
    # the REST API credentials are generated at start (credentials.resolve), after this pure render
    assert conf["restapi"] == {"listen": "0.0.0.0:8008", "connect_address": "172.20.0.5:8008"}
    pg = conf["postgresql"]
    assert pg["connect_address"] == "172.20.0.5:5432"
    assert pg["data_dir"] == "/home/postgres/pgdata/pgroot/data"
    assert pg["authentication"]["superuser"] == {"username": "postgres", "password": 'p"w: x#'}
    assert pg["parameters"]["shared_buffers"] == "512MB"
    assert conf["bootstrap"]["dcs"]["postgresql"]["parameters"]["max_connections"] == 204
    assert "hostssl replication standby all scram-sha-256" in pg["pg_hba"]
    dcs = conf["bootstrap"]["dcs"]
    assert dcs["loop_wait"] + 2 * dcs["retry_timeout"] <= dcs["ttl"]


def test_supervisord_programs() -> None:
    demo = configparser.ConfigParser(interpolation=None)
    demo.read_string(files()["supervisord.conf"])
    assert {"program:etcd", "program:howdah"} <= set(demo.sections())
    assert "program:pgbouncer" not in demo.sections()
    assert "--enable-v2=false" in demo["program:etcd"]["command"]
    assert int(demo["program:etcd"]["priority"]) < int(demo["program:howdah"]["priority"])
    node = configparser.ConfigParser(interpolation=None)
    node.read_string(files(SCOPE="c", ETCD_HOST="etcd", PGBOUNCER="1", HOWDAH_STOP_TIMEOUT="80")["supervisord.conf"])
    assert "program:etcd" not in node.sections() and "program:pgbouncer" in node.sections()
    assert node["program:howdah"]["stopsignal"] == "TERM" and node["program:howdah"]["stopwaitsecs"] == "80"


def test_overlays_merge_in_order_and_extend_pg_hba() -> None:
    conf = agent(
        SPILO_CONFIGURATION="bootstrap: {dcs: {ttl: 40}}\npostgresql: {parameters: {work_mem: 8MB}}",
        HOWDAH_CONFIGURATION="bootstrap: {dcs: {ttl: 45}}\npostgresql: {+pg_hba: [host all all 10.0.0.0/8 trust],"
                             " pg_hba+: [host all all 0.0.0.0/0 reject]}\ntags: {nofailover: true}",
    )
    assert conf["bootstrap"]["dcs"]["ttl"] == 45
    assert conf["postgresql"]["parameters"]["work_mem"] == "8MB"
    assert conf["postgresql"]["parameters"]["shared_buffers"] == "512MB"
    hba = conf["postgresql"]["pg_hba"]
    assert hba[0] == "host all all 10.0.0.0/8 trust" and hba[-1] == "host all all 0.0.0.0/0 reject"
    assert "local all postgres peer" in hba
    assert conf["tags"]["nofailover"] is True


def test_overlay_that_cannot_merge_names_the_variable() -> None:
    with pytest.raises(EnvError) as info:
        agent(HOWDAH_CONFIGURATION="scope+: [x]")
    assert info.value.variable == "HOWDAH_CONFIGURATION"


def test_pgbouncer_files() -> None:
    out = files(PGBOUNCER_CONFIGURATION="pool_mode: transaction\ndatabases: {app: host=127.0.0.1 dbname=app}",
                PGPASSWORD_ADMIN='a"b', PGPASSWORD_SUPERUSER="postgres")
    ini = configparser.ConfigParser(interpolation=None)
    ini.read_string(out["pgbouncer.ini"])
    assert ini["pgbouncer"]["pool_mode"] == "transaction"
    assert ini["pgbouncer"]["listen_port"] == "6432"
    assert dict(ini["databases"]) == {"app": "host=127.0.0.1 dbname=app"}
    assert out["userlist.txt"].splitlines() == ['"postgres" "postgres"', '"admin" "a""b"']
    assert "pgbouncer.ini" not in files()


def test_pgbackrest_archiving() -> None:
    conf = agent(SCOPE="c", ETCD_HOST="e", WAL_S3_BUCKET="bk", AWS_ENDPOINT="https://minio:9000",
                 AWS_ACCESS_KEY_ID="k", AWS_SECRET_ACCESS_KEY="s")
    params = conf["bootstrap"]["dcs"]["postgresql"]["parameters"]
    assert params["archive_mode"] == "on" and "--stanza=c archive-push %p" in params["archive_command"]
    text = files(SCOPE="c", ETCD_HOST="e", WAL_S3_BUCKET="bk", AWS_ENDPOINT="https://minio:9000")["pgbackrest.conf"]
    assert "repo1-type=s3" in text and "repo1-s3-endpoint=minio" in text and "repo1-storage-port=9000" in text and "[c]" in text
    plain = agent()["bootstrap"]["dcs"]["postgresql"]["parameters"]
    assert "archive_command" not in plain


def test_callbacks_and_standby_cluster() -> None:
    # CALLBACK_SCRIPT must exist; every callback runs it through the dispatcher (test_entrypoint_callbacks.py)
    conf = agent(CALLBACK_SCRIPT="/bin/true", STANDBY_HOST="10.0.0.9", STANDBY_PORT="5433")
    assert "--run user=/bin/true" in conf["postgresql"]["callbacks"]["on_role_change"]
    assert conf["bootstrap"]["dcs"]["standby_cluster"] == {"host": "10.0.0.9", "port": 5433}


def test_ssl_paths() -> None:
    s = settings.load({"SSL_CERTIFICATE_FILE": "/certs/a.crt", "SSL_PRIVATE_KEY": "-----BEGIN KEY"}, FACTS)
    assert render.ssl_paths(s) == ("/certs/a.crt", "/run/howdah/ssl/server.key")


def test_haproxy() -> None:
    h = haproxy.load({"HAPROXY_NODES": "a,b:5433:8009", "HAPROXY_PRIMARY_PORT": "6000"})
    text = haproxy.render(h)
    assert "bind *:6000" in text and "bind *:5001" in text and "bind *:7000" in text
    assert "server a a:5432 check port 8008" in text and "server b b:5433 check port 8009" in text
    assert "OPTIONS /primary" in text and "OPTIONS /replica" in text
    for bad in ({"HAPROXY_NODES": "a:1"}, {"HAPROXY_NODES": ","}, {"HAPROXY_STATS_PORT": "x"}):
        with pytest.raises(EnvError):
            haproxy.load(bad)


def test_pg_hba_has_no_trust_and_tls_for_remote_hosts() -> None:
    hba = agent()["postgresql"]["pg_hba"]
    assert not [line for line in hba if "trust" in line or " md5" in line or "password" in line.split()]
    assert hba[0] == "local all postgres peer" and hba[1] == "local all all scram-sha-256"
    remote = [line for line in hba if not line.startswith("local") and "127.0.0.1" not in line and "::1" not in line]
    assert remote and all(line.startswith("hostssl ") for line in remote)
    assert all(line.startswith("host ") for line in agent(ALLOW_NOSSL="true")["postgresql"]["pg_hba"]
               if line.endswith("all all all scram-sha-256"))
    initdb = agent()["bootstrap"]["initdb"]
    assert {"auth-local": "peer"} in initdb and {"auth-local": "trust"} not in initdb


def test_no_peer_line_when_the_os_user_is_not_the_superuser() -> None:
    random_uid = settings.Facts(hostname="n", ip="10.0.0.1", memory=sizing(GiB), os_user="postgres-123456")
    conf = yaml.safe_load(render.render_all(settings.load({}, random_uid))["howdah.yml"][0])
    assert not [line for line in conf["postgresql"]["pg_hba"] if "peer" in line or "trust" in line]
    named = agent(PGUSER_SUPERUSER="root_pg")["postgresql"]["pg_hba"]
    assert not [line for line in named if "peer" in line]
