"""REST TLS: config checks, server contexts, and the member/howdahctl client rules,
with real certificates and real handshakes against an in-process RestApiServer."""
from __future__ import annotations

import ssl
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.tls import CertPair, TestCA, have_openssl  # noqa: E402

from howdah.agent.peers import fetch_one, pool_from_config  # noqa: E402
from howdah.api.server import RestApiServer  # noqa: E402
from howdah.core.status import NodeStatus  # noqa: E402
from howdah.config.tls import (TlsConfigError, check_config, member_client_context,  # noqa: E402
                            server_context, unsafe_needs_client_cert)
from howdah.config.load import ConfigError, apply_env, validate  # noqa: E402
from howdah.core.models import Member  # noqa: E402
from howdah.ctl.api import pool_for  # noqa: E402

pytestmark = pytest.mark.skipif(not have_openssl(), reason="needs the openssl CLI")


@pytest.fixture(scope="module")
def ca() -> Iterator[TestCA]:
    with TestCA(owner=None) as authority:
        yield authority


@pytest.fixture(scope="module")
def certs(ca: TestCA) -> dict[str, CertPair]:
    return {"server": ca.issue("server"), "client": ca.issue("client", client=True, server=False),
            "locked": ca.issue("locked", password="pw")}


def test_check_config_names_the_field() -> None:
    with pytest.raises(TlsConfigError, match=r"^restapi.verify_client: 'maybe' is not one of"):
        check_config({"certfile": "/c", "cafile": "/a", "verify_client": "maybe"}, {})
    with pytest.raises(TlsConfigError, match=r"^restapi.verify_client: required needs https"):
        check_config({"verify_client": "required"}, {})
    with pytest.raises(TlsConfigError, match=r"^restapi.cafile: verify_client is optional"):
        check_config({"certfile": "/c", "verify_client": "optional"}, {})
    with pytest.raises(TlsConfigError, match=r"^ctl.certfile: ctl.keyfile is set"):
        check_config({}, {"keyfile": "/k"})
    with pytest.raises(TlsConfigError, match=r"^restapi.certfile: must be a string"):
        check_config({"certfile": ["/c"]}, {})
    check_config({"certfile": "/c", "cafile": "/a", "verify_client": "REQUIRED"}, {})
    assert unsafe_needs_client_cert({"certfile": "/c", "verify_client": "Optional"})
    assert not unsafe_needs_client_cert({"certfile": "/c", "verify_client": "none"})
    assert not unsafe_needs_client_cert({"verify_client": "required"})  # no https: refused at load


def _tree(**restapi: Any) -> dict[str, Any]:
    return {"name": "n1", "scope": "s", "etcd3": {"host": "127.0.0.1:2379"},
            "restapi": {"listen": "127.0.0.1:8008", **restapi},
            "postgresql": {"listen": "127.0.0.1:5432", "data_dir": "/d", "authentication": {
                "superuser": {"username": "p"}, "replication": {"username": "r"}}}}


def test_env_vars_and_config_load() -> None:
    tree = _tree()
    apply_env(tree, {"PATRONI_RESTAPI_CERTFILE": "/c", "PATRONI_RESTAPI_KEYFILE": "/k",
                     "PATRONI_RESTAPI_KEYFILE_PASSWORD": "pw", "PATRONI_RESTAPI_CAFILE": "/a",
                     "PATRONI_RESTAPI_CIPHERS": "ECDHE+AESGCM",
                     "PATRONI_RESTAPI_VERIFY_CLIENT": "required",
                     "PATRONI_CTL_CERTFILE": "/cc", "PATRONI_CTL_KEYFILE": "/ck",
                     "PATRONI_CTL_KEYFILE_PASSWORD": "cpw", "PATRONI_CTL_CACERT": "/ca",
                     "PATRONI_CTL_INSECURE": "false"})
    assert tree["restapi"]["verify_client"] == "required"
    assert tree["restapi"]["keyfile_password"] == "pw" and tree["restapi"]["ciphers"] == "ECDHE+AESGCM"
    assert tree["ctl"] == {"certfile": "/cc", "keyfile": "/ck", "keyfile_password": "cpw",
                           "cacert": "/ca", "insecure": "false"}
    validate(tree)
    with pytest.raises(ConfigError, match=r"^restapi.verify_client: 'yes' is not one of"):
        validate(_tree(certfile="/c", cafile="/a", verify_client="yes"))


def test_server_context_errors_are_one_line(ca: TestCA, certs: dict[str, CertPair]) -> None:
    server, locked = certs["server"], certs["locked"]
    with pytest.raises(TlsConfigError, match=r"^restapi.certfile: no such file /nope.pem$"):
        server_context({"certfile": "/nope.pem"})
    with pytest.raises(TlsConfigError, match=r"^restapi.keyfile: cannot load .*keyfile_password"):
        server_context({"certfile": locked.cert, "keyfile": locked.key, "keyfile_password": "bad"})
    with pytest.raises(TlsConfigError, match=r"^restapi.ciphers: 'NO-SUCH-CIPHER' selects no"):
        server_context({"certfile": server.cert, "keyfile": server.key, "ciphers": "NO-SUCH-CIPHER"})
    with pytest.raises(TlsConfigError, match=r"^restapi.cafile: no such file /nope-ca.pem$"):
        server_context({"certfile": server.cert, "keyfile": server.key, "cafile": "/nope-ca.pem",
                        "verify_client": "required"})
    ctx = server_context({"certfile": locked.cert, "keyfile": locked.key, "keyfile_password": "pw",
                          "cafile": ca.cert, "verify_client": "optional", "ciphers": "ECDHE+AESGCM"})
    assert ctx is not None and ctx.verify_mode == ssl.CERT_OPTIONAL
    assert server_context({}) is None


def test_member_client_follows_patronis_rule(ca: TestCA, certs: dict[str, CertPair]) -> None:
    client = certs["client"]
    assert member_client_context({"cafile": ca.cert}, {}) is None  # no ctl.certfile: no checks
    assert member_client_context({}, {"cacert": ca.cert, "insecure": True}) is None
    only_ca = member_client_context({}, {"cacert": ca.cert})
    assert only_ca is not None and only_ca.verify_mode == ssl.CERT_REQUIRED
    ctx = member_client_context({"cafile": ca.cert}, {"certfile": client.cert, "keyfile": client.key})
    assert ctx is not None and ctx.verify_mode == ssl.CERT_REQUIRED and not ctx.check_hostname
    with pytest.raises(TlsConfigError, match=r"^ctl.certfile: no such file /nope.pem$"):
        member_client_context({}, {"certfile": "/nope.pem"})


def test_howdahctl_pool_follows_patronictls_rule(ca: TestCA) -> None:
    kw = pool_for({}, {"cafile": ca.cert}).connection_pool_kw
    assert kw["cert_reqs"] == "CERT_REQUIRED" and kw["ca_certs"] == ca.cert
    kw = pool_for({"cacert": "/ctl-ca", "certfile": "/c", "keyfile": "/k", "keyfile_password": "p",
                   "insecure": True}, {"cafile": ca.cert}).connection_pool_kw
    assert kw["ca_certs"] == "/ctl-ca" and kw["cert_file"] == "/c" and kw["key_password"] == "p"
    assert kw["cert_reqs"] == "CERT_REQUIRED" and kw["assert_hostname"] is False
    assert pool_for({"insecure": "true"}).connection_pool_kw["cert_reqs"] == "CERT_NONE"


@pytest.fixture
def api(ca: TestCA, certs: dict[str, CertPair]) -> Iterator[RestApiServer]:
    server = RestApiServer(lambda: NodeStatus(name="n2", state="running", role="replica"),
                           certfile=certs["server"].cert, keyfile=certs["server"].key,
                           cafile=ca.cert, verify_client="required", use_uvloop=False)
    server.start("127.0.0.1", 0)
    yield server
    server.stop()


def test_peer_check_over_mutual_tls(api: RestApiServer, ca: TestCA,
                                    certs: dict[str, CertPair]) -> None:
    member = Member(name="n2", api_url=f"https://127.0.0.1:{api.port}/patroni")
    client = certs["client"]
    good = pool_from_config({"cafile": ca.cert}, {"certfile": client.cert, "keyfile": client.key})
    status = fetch_one(member, good)
    assert status.reachable and status.role == "replica"
    # no ctl.certfile: no certificate is presented, and the server refuses the handshake
    assert not fetch_one(member, pool_from_config({"cafile": ca.cert}, {})).reachable
    # a peer whose certificate another CA signed is not trusted
    with TestCA(owner=None) as other:
        stranger = pool_from_config({}, {"certfile": client.cert, "keyfile": client.key,
                                         "cacert": other.cert})
        assert not fetch_one(member, stranger).reachable


def test_unsafe_request_needs_a_client_certificate_when_optional(
        ca: TestCA, certs: dict[str, CertPair]) -> None:
    from howdah.api.security import Guard
    guard = Guard.from_config({"certfile": "/c", "cafile": "/a", "verify_client": "optional"})
    refusal = guard.refusal("POST", "127.0.0.1", None, client_cert=False)
    assert refusal is not None and (refusal.code, refusal.message) == (403, "client certificate required")
    assert guard.refusal("POST", "127.0.0.1", None, client_cert=True) is None
    assert guard.refusal("GET", "127.0.0.1", None, client_cert=False) is None
    # allowlist first, as Patroni: 403 Access is denied
    fenced = Guard.from_config({"certfile": "/c", "cafile": "/a", "verify_client": "optional",
                                "allowlist": ["10.0.0.0/8"]})
    first = fenced.refusal("POST", "127.0.0.1", None, client_cert=False)
    assert first is not None and first.message == "Access is denied"


def test_encrypted_key_without_password_is_an_error_not_a_prompt(
        certs: dict[str, CertPair]) -> None:
    locked = certs["locked"]
    with pytest.raises(TlsConfigError, match=r"^restapi.keyfile: cannot load .* needs "
                                             r"restapi.keyfile_password$"):
        server_context({"certfile": locked.cert, "keyfile": locked.key})
