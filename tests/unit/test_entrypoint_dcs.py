"""Spilo's DCS variables -> the agent's DCS section; unsupported DCS refused with one line."""
from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from howdah.config.load import ConfigError, load as load_agent_config
from howdah.entrypoint import dcs, render, settings
from howdah.entrypoint.errors import EnvError
from howdah.entrypoint.memory import sizing

FACTS = settings.Facts(hostname="node1", ip="172.20.0.5", memory=sizing(None))


def section(**env: str) -> dict:
    return settings.load({"SCOPE": "c", **env}, FACTS).dcs.section()


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"ETCD3_HOST": "etcd"}, {"etcd3": {"host": "etcd:2379"}}),
        ({"ETCD3_HOSTS": "'a:2379','b:2379'"}, {"etcd3": {"hosts": ["a:2379", "b:2379"]}}),
        ({"ETCD3_HOSTS": "[a:1, b:2]", "ETCD3_PROTOCOL": "https"},
         {"etcd3": {"hosts": ["a:1", "b:2"], "protocol": "https"}}),
        ({"ETCD3_URL": "https://etcd:2379"}, {"etcd3": {"url": "https://etcd:2379"}}),
        ({"ETCD3_PROXY": "http://grpc-proxy:23790"}, {"etcd3": {"proxy": "http://grpc-proxy:23790"}}),
        ({"ETCD3_HOST": "e", "ETCD3_USERNAME": "u", "ETCD3_PASSWORD": "p", "ETCD3_CACERT": "/ca.pem",
          "ETCD3_CERT": "/c.pem", "ETCD3_KEY": "/k.pem"},
         {"etcd3": {"host": "e:2379", "username": "u", "password": "p", "cacert": "/ca.pem",
                    "cert": "/c.pem", "key": "/k.pem"}}),
        # the agent looks the SRV records up (at start and on failure): Patroni's `srv`
        ({"ETCD3_DISCOVERY_DOMAIN": "plain.example"}, {"etcd3": {"srv": "plain.example"}}),
        ({"ETCD3_DISCOVERY_DOMAIN": "tls.example."}, {"etcd3": {"srv": "tls.example"}}),
        ({"ETCD_DISCOVERY_DOMAIN": "plain.example", "ETCD_PROTOCOL": "https"},
         {"etcd": {"srv": "plain.example", "protocol": "https"}}),
        ({"ETCD_PROXY": "http://proxy:2379"}, {"etcd": {"proxy": "http://proxy:2379"}}),
        ({"ETCD_HOST": "etcd:2379", "ETCD_CACERT": "/ca.pem"}, {"etcd": {"host": "etcd:2379", "cacert": "/ca.pem"}}),
    ],
)
def test_etcd_variables(env: dict[str, str], expected: dict) -> None:
    assert section(**env) == expected


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"ETCD3_HOST": "a", "ETCD3_HOSTS": "b:1"}, "ETCD3_HOSTS"),
        ({"ETCD3_HOST": "a", "ETCD3_PROXY": "http://b:1"}, "ETCD3_PROXY"),
        ({"ETCD3_HOST": "a", "ETCD_HOST": "b"}, "ETCD_*"),
        ({"ETCD3_PROXY": "grpc-proxy:2379"}, "ETCD3_PROXY"),
        ({"ETCD3_HOST": "a", "ETCD3_PROTOCOL": "grpc"}, "ETCD3_PROTOCOL"),
        ({"ETCD3_HOST": "a", "ETCD3_PASSWORD": "p"}, "ETCD3_USERNAME"),
        ({"ETCD3_HOSTS": "a:1,b:x"}, "ETCD3_HOSTS"),
        ({"ETCD3_DISCOVERY_DOMAIN": "http://etcd.example"}, "ETCD3_DISCOVERY_DOMAIN"),
        ({"ETCD3_HOST": "a", "DCS_ENABLE_KUBERNETES_API": "true"}, "DCS_ENABLE_KUBERNETES_API"),
        ({"ZOOKEEPER_HOSTS": "zk1:2181,zk2:2181"}, "ZOOKEEPER_HOSTS"),
        ({"EXHIBITOR_HOSTS": "ex1", "EXHIBITOR_PORT": "8181"}, "EXHIBITOR_HOSTS"),
        ({"CONSUL_HOST": "consul:8500"}, "CONSUL_HOST"),
        ({"CONSUL_URL": "http://consul:8500", "ETCD3_HOST": "etcd"}, "CONSUL_URL"),
        ({"PATRONI_RAFT_SELF_ADDR": "n1:2222"}, "PATRONI_RAFT_SELF_ADDR"),
        ({"SPILO_CONFIGURATION": "consul: {host: 'consul:8500'}"}, "SPILO_CONFIGURATION"),
        ({"HOWDAH_CONFIGURATION": "zookeeper:\n  hosts: [zk:2181]"}, "HOWDAH_CONFIGURATION"),
        ({"KUBERNETES_LABELS": "application=spilo", "DCS_ENABLE_KUBERNETES_API": "true"}, "KUBERNETES_LABELS"),
    ],
)
def test_refused_with_one_line(env: dict[str, str], variable: str) -> None:
    with pytest.raises(EnvError) as info:
        settings.load({"SCOPE": "c", **env}, FACTS)
    assert info.value.variable == variable
    line = info.value.line()
    assert "\n" not in line and variable in line and ";" in line


def test_unsupported_dcs_names_the_alternatives() -> None:
    with pytest.raises(EnvError) as info:
        settings.load({"SCOPE": "c", "ZOOKEEPER_HOSTS": "zk:2181"}, FACTS)
    assert "ZooKeeper is not supported" in info.value.line() and "ETCD3_HOSTS" in info.value.line()


def test_kubernetes_spilo_defaults() -> None:
    env = {"DCS_ENABLE_KUBERNETES_API": "true", "POD_NAMESPACE": "db", "POD_IP": "10.1.2.3"}
    k = section(**env)["kubernetes"]
    assert k["role_label"] == "spilo-role" and k["scope_label"] == "version"
    assert (k["leader_label_value"], k["follower_label_value"], k["standby_leader_label_value"]) == (
        "master", "replica", "master")
    assert k["labels"] == {"application": "spilo"} and k["namespace"] == "db"
    assert k["use_endpoints"] is True and k["pod_ip"] == "10.1.2.3"
    assert k["ports"] == [{"name": "postgresql", "port": 5432}] and k["bypass_api_service"] is True


def test_kubernetes_spilo_variables() -> None:
    k = section(DCS_ENABLE_KUBERNETES_API="true", KUBERNETES_USE_CONFIGMAPS="true",
                KUBERNETES_ROLE_LABEL="role", KUBERNETES_SCOPE_LABEL="cluster-name",
                KUBERNETES_LABELS='{"application": "db", "team": "a"}',
                KUBERNETES_LEADER_LABEL_VALUE="primary", KUBERNETES_STANDBY_LEADER_LABEL_VALUE="standby",
                KUBERNETES_FOLLOWER_LABEL_VALUE="follower", KUBERNETES_BYPASS_API_SERVICE="false",
                KUBERNETES_BOOTSTRAP_LABELS='{"bootstrapping": "yes"}')["kubernetes"]
    assert k["use_endpoints"] is False and "pod_ip" not in k and "ports" not in k
    assert (k["role_label"], k["scope_label"]) == ("role", "cluster-name")
    assert k["labels"] == {"application": "db", "team": "a"} and k["bootstrap_labels"] == {"bootstrapping": "yes"}
    assert (k["leader_label_value"], k["standby_leader_label_value"], k["follower_label_value"]) == (
        "primary", "standby", "follower")
    assert k["bypass_api_service"] is False


def test_rendered_etcd3_section_is_what_the_agent_reads(tmp_path) -> None:
    s = settings.load({"SCOPE": "c", "ETCD3_HOSTS": "e1:2379,e2:2379", "ETCD3_PROTOCOL": "https"}, FACTS)
    text = render.render_all(s)["howdah.yml"][0]
    path = tmp_path / "howdah.yml"
    path.write_text(text)
    cfg = load_agent_config(path, env={})
    assert cfg.dcs_kind == "etcd3" and cfg.dcs == {"hosts": ["e1:2379", "e2:2379"], "protocol": "https"}
    render.check_agent_config(text, {})


def test_rendered_config_the_agent_would_refuse_stops_the_entrypoint() -> None:
    s = settings.load({"SCOPE": "c", "ETCD3_HOST": "e", "SPILO_CONFIGURATION": "bootstrap: {method: custom}"}, FACTS)
    text = render.render_all(s)["howdah.yml"][0]
    with pytest.raises(EnvError) as info:
        render.check_agent_config(text, {})
    assert "bootstrap.custom.command" in info.value.line() and "\n" not in info.value.line()
    with pytest.raises(EnvError):
        render.check_agent_config(render.render_all(settings.load({"SCOPE": "c", "ETCD3_HOST": "e"}, FACTS))
                                  ["howdah.yml"][0], {"PATRONI_ZOOKEEPER_HOSTS": "zk:2181"})


def test_agent_refuses_patroni_consul_variables(tmp_path) -> None:
    path = tmp_path / "a.yml"
    path.write_text(yaml.safe_dump({"scope": "c", "name": "n", "etcd3": {"host": "127.0.0.1:2379"}}))
    with pytest.raises(ConfigError) as info:
        load_agent_config(path, env={"PATRONI_CONSUL_HOST": "consul:8500"})
    assert info.value.field == "PATRONI_CONSUL_HOST" and "not supported" in str(info.value)


def test_entrypoint_exits_2_with_one_line_for_zookeeper() -> None:
    env = {"PATH": "/usr/bin:/bin", "SCOPE": "c", "ZOOKEEPER_HOSTS": "zk1:2181"}
    proc = subprocess.run([sys.executable, "-c", "from howdah.entrypoint.main import main; main([])"],
                          env={**env, "PYTHONPATH": ":".join(sys.path)}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "ZOOKEEPER_HOSTS" in lines[0] and "not supported" in lines[0]
