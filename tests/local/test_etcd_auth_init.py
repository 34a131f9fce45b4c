"""`howdah-entrypoint etcd-auth` (docker-compose.yml's etcd-auth service) against a real etcd
with the v2 API off: auth goes on with root and the agents' user, anonymous requests are
refused, the agents' user reaches only its prefix, a second run changes nothing but the
user's password (rotation), and a wrong root password or a missing variable is one line."""
from __future__ import annotations

import socket
from typing import Any, Iterator

import pytest

from harness import EtcdServer
from harness import web
from howdah.dcs import open_backend
from howdah.dcs.base import DcsError
from howdah.entrypoint import etcd_auth

pytestmark = [pytest.mark.local, pytest.mark.own_dcs]


def env(server: EtcdServer, **extra: str) -> dict[str, str]:
    return {"ETCD3_HOST": server.host_port, "ETCD_ROOT_PASSWORD": "root-pw", "ETCD3_USERNAME": "agents",
            "ETCD3_PASSWORD": "agents-pw", "ETCD_AUTH_WAIT": "20", **extra}


def agent(server: EtcdServer, password: str, scope: str = "t") -> Any:
    return open_backend("etcd3", {"hosts": server.host_port, "username": "agents", "password": password},
                        "/service/", scope, "a", 1.0)


def put(server: EtcdServer, key: str, token: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": token} if token else {}
    return web.request(server.url + "/v3/kv/put", method="POST", timeout=5, headers=headers,
                       body={"key": etcd_auth._b64(key.encode()), "value": etcd_auth._b64(b"x")})


def token(server: EtcdServer, name: str, password: str) -> str | None:
    code, data = web.request(server.url + "/v3/auth/authenticate", method="POST", timeout=5,
                             body={"name": name, "password": password})
    return str(data["token"]) if code == 200 and isinstance(data, dict) and data.get("token") else None


@pytest.fixture
def server() -> Iterator[EtcdServer]:
    with EtcdServer(v2=False) as s:
        yield s


def test_auth_on_anonymous_refused_agents_confined_to_their_prefix(server: EtcdServer,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert put(server, "/service/pre/x")[0] == 200, "no auth before the step"
    assert etcd_auth.main(env(server)) == 0
    assert "authentication enabled" in capsys.readouterr().out
    for key in ("/service/t/leader", "/elsewhere"):
        code, body = put(server, key)
        assert code != 200, (key, code, body)
    a = agent(server, "agents-pw")
    assert a.acquire_leader(10) and a.get_cluster().leader is not None
    with pytest.raises(DcsError):
        agent(server, "wrong").get_cluster()
    agents = token(server, "agents", "agents-pw")
    assert agents and put(server, "/service/other/x", agents)[0] == 200
    assert put(server, "/elsewhere", agents)[0] != 200, "read-write on the prefix only"
    code, _ = web.request(server.url + "/v3/auth/disable", method="POST", body={}, timeout=5,
                          headers={"Authorization": agents})
    assert code != 200, "the agents' user cannot turn auth off"
    root = token(server, "root", "root-pw")
    assert root and put(server, "/elsewhere", root)[0] == 200


def test_a_second_run_is_idempotent_and_rotates_the_agents_password(server: EtcdServer,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert etcd_auth.main(env(server)) == 0
    assert agent(server, "agents-pw", "r").acquire_leader(10)
    assert etcd_auth.main(env(server)) == 0
    assert "already on" in capsys.readouterr().out
    assert agent(server, "agents-pw", "r").get_cluster().leader is not None
    assert etcd_auth.main(env(server, ETCD3_PASSWORD="rotated-pw")) == 0
    assert token(server, "agents", "agents-pw") is None
    assert agent(server, "rotated-pw", "r").get_cluster().leader is not None
    assert put(server, "/service/r/leader")[0] != 200


def test_refusals_are_one_line(server: EtcdServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert etcd_auth.main(env(server)) == 0
    capsys.readouterr()
    assert etcd_auth.main(env(server, ETCD_ROOT_PASSWORD="guess")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ETCD_ROOT_PASSWORD" in err[0], err
    bad = env(server)
    del bad["ETCD3_PASSWORD"]
    assert etcd_auth.main(bad) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ETCD3_PASSWORD" in err[0], err
    assert etcd_auth.main(env(server, ETCD3_USERNAME="root")) == 2
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{sock.getsockname()[1]}"
    assert etcd_auth.main({**env(server), "ETCD3_HOST": dead, "ETCD_AUTH_WAIT": "2"}) == 1
    assert "did not answer" in capsys.readouterr().err
