"""Object-storage repositories from Spilo's variables (entrypoint/repo.py) and how WAL-E/WAL-G
variables are mapped or refused."""
from __future__ import annotations

import configparser

import pytest

from howdah.entrypoint import render, repo, settings
from howdah.entrypoint.errors import EnvError
from howdah.entrypoint.memory import sizing

FACTS = settings.Facts(hostname="node1", ip="172.20.0.5", memory=sizing(2 * 1024 ** 3))
KEYS = {"AWS_ACCESS_KEY_ID": "AKIA1", "AWS_SECRET_ACCESS_KEY": "sec1"}


def s3(**env: str) -> dict[str, str]:
    found = repo.repository({"WAL_S3_BUCKET": "wal", **env}, "demo")
    assert found is not None and found.kind == "s3"
    return dict(found.options)


def refused(env: dict[str, str], prefix: str = "") -> EnvError:
    with pytest.raises(EnvError) as caught:
        repo.repository(env, "demo", prefix)
    assert caught.value.line().count("\n") == 0
    return caught.value


@pytest.mark.parametrize("endpoint,host,port", [
    ("https://minio.example:9000", "minio.example", "9000"),
    ("https://minio.example", "minio.example", None),
    ("minio.example:9000", "minio.example", "9000"),
    ("minio.example", "minio.example", None),
    ("https://minio.example:9000/", "minio.example", "9000"),
    ("https+path://minio.example:9443", "minio.example", "9443"),
])
def test_endpoint_with_or_without_scheme_and_port(endpoint: str, host: str, port: str | None) -> None:
    opts = s3(AWS_ENDPOINT=endpoint)
    assert opts["s3-endpoint"] == host and opts.get("storage-port") == port
    assert opts["s3-uri-style"] == "path", "a custom endpoint defaults to path style, as Spilo"


def test_plain_http_endpoint_is_refused_in_one_line() -> None:
    error = refused({"WAL_S3_BUCKET": "wal", "AWS_ENDPOINT": "http://minio:9000"})
    assert error.variable == "AWS_ENDPOINT" and "HTTPS" in error.problem and "AWS_CA_BUNDLE" in error.fix
    assert refused({"WAL_S3_BUCKET": "wal", "AWS_ENDPOINT": "https://minio:99999"}).variable == "AWS_ENDPOINT"


def test_aws_defaults_host_style_and_region() -> None:
    opts = s3()
    assert opts["s3-endpoint"] == "s3.us-east-1.amazonaws.com" and opts["s3-uri-style"] == "host"
    assert opts["s3-region"] == "us-east-1" and opts["path"] == "/demo" and opts["type"] == "s3"
    assert s3(AWS_REGION="eu-central-1")["s3-endpoint"] == "s3.eu-central-1.amazonaws.com"
    assert s3(AWS_ENDPOINT="https://s3.eu-west-1.amazonaws.com")["s3-region"] == "eu-west-1"
    assert s3(AWS_S3_FORCE_PATH_STYLE="true")["s3-uri-style"] == "path"
    assert s3(AWS_ENDPOINT="minio:9000", AWS_S3_FORCE_PATH_STYLE="false")["s3-uri-style"] == "host"
    assert refused({"WAL_S3_BUCKET": "wal", "AWS_S3_FORCE_PATH_STYLE": "maybe"}).variable == "AWS_S3_FORCE_PATH_STYLE"


def test_ca_bundle_and_verify_off() -> None:
    assert s3(AWS_CA_BUNDLE="/certs/ca.pem")["storage-ca-file"] == "/certs/ca.pem"
    assert s3(WALG_S3_CA_CERT_FILE="/certs/walg.pem")["storage-ca-file"] == "/certs/walg.pem"
    assert refused({"WAL_S3_BUCKET": "wal", "AWS_CA_BUNDLE": "ca.pem"}).variable == "AWS_CA_BUNDLE"
    found = repo.repository({"WAL_S3_BUCKET": "wal", "AWS_S3_VERIFY_TLS": "false"}, "demo")
    assert found is not None and found.option("storage-verify-tls") == "n"
    assert any(n.startswith("WARNING: AWS_S3_VERIFY_TLS=false") for n in found.notes)
    assert "storage-verify-tls" not in s3(AWS_S3_VERIFY_TLS="true")


def test_credentials_static_web_identity_instance_profile() -> None:
    opts = s3(**KEYS, AWS_SESSION_TOKEN="tok")
    assert (opts["s3-key-type"], opts["s3-key"], opts["s3-key-secret"], opts["s3-token"]) == ("shared", "AKIA1", "sec1", "tok")
    assert refused({"WAL_S3_BUCKET": "w", "AWS_ACCESS_KEY_ID": "a"}).variable == "AWS_SECRET_ACCESS_KEY"
    assert refused({"WAL_S3_BUCKET": "w", "AWS_SECRET_ACCESS_KEY": "a"}).variable == "AWS_ACCESS_KEY_ID"
    web = s3(AWS_ROLE_ARN="arn:aws:iam::1:role/r", AWS_WEB_IDENTITY_TOKEN_FILE="/var/run/token")
    assert web["s3-key-type"] == "web-id" and "s3-key" not in web
    assert refused({"WAL_S3_BUCKET": "w", "AWS_ROLE_ARN": "arn"}).variable == "AWS_WEB_IDENTITY_TOKEN_FILE"
    assert s3()["s3-key-type"] == "auto"


def test_server_side_encryption() -> None:
    assert s3(AWS_S3_SSE="aws:kms", AWS_S3_SSE_KMS_ID="key-1")["s3-kms-key-id"] == "key-1"
    assert s3(WALG_S3_SSE="aws:kms", WALG_S3_SSE_KMS_ID="key-2")["s3-kms-key-id"] == "key-2"
    assert s3(AWS_S3_SSE_KMS_ID="key-3")["s3-kms-key-id"] == "key-3"
    assert "s3-kms-key-id" not in s3(AWS_S3_SSE="AES256")
    assert refused({"WAL_S3_BUCKET": "w", "AWS_S3_SSE": "aws:kms"}).variable == "AWS_S3_SSE_KMS_ID"
    assert refused({"WAL_S3_BUCKET": "w", "AWS_S3_SSE": "rot13"}).variable == "AWS_S3_SSE"


def test_repository_path_per_scope_and_from_wal_tool_prefixes() -> None:
    assert s3(WAL_BUCKET_SCOPE_PREFIX="spilo/", WAL_BUCKET_SCOPE_SUFFIX="/pgbackrest")["path"] == "/spilo/demo/pgbackrest"
    found = repo.repository({"WALG_S3_PREFIX": "s3://bk/spilo/demo/wal"}, "demo")
    assert found is not None and found.option("s3-bucket") == "bk" and found.path == "/spilo/demo/wal"
    assert any("WALG_S3_PREFIX" in n and "INFO" in n for n in found.notes)
    wale = repo.repository({"WALE_S3_PREFIX": "s3://bk/x", "WALE_S3_ENDPOINT": "https+path://minio:9000"}, "demo")
    assert wale is not None and wale.option("s3-endpoint") == "minio" and wale.option("s3-uri-style") == "path"
    assert refused({"WALG_S3_PREFIX": "bk/path"}).variable == "WALG_S3_PREFIX"
    assert refused({"WAL_S3_BUCKET": "s3://bk"}).variable == "WAL_S3_BUCKET"


def test_gcs_and_azure() -> None:
    gcs = repo.repository({"WAL_GS_BUCKET": "g", "GOOGLE_APPLICATION_CREDENTIALS": "/secrets/sa.json"}, "demo")
    assert gcs is not None and gcs.kind == "gcs"
    assert dict(gcs.options) == {"type": "gcs", "path": "/demo", "gcs-bucket": "g", "gcs-key-type": "service",
                                 "gcs-key": "/secrets/sa.json"}
    auto = repo.repository({"WALG_GS_PREFIX": "gs://g/p"}, "demo")
    assert auto is not None and auto.option("gcs-key-type") == "auto" and auto.path == "/p"
    az = repo.repository({"WALG_AZ_PREFIX": "azure://cont/walg", "AZURE_STORAGE_ACCOUNT": "acct",
                          "AZURE_STORAGE_ACCESS_KEY": "k=="}, "demo")
    assert az is not None and dict(az.options) == {"type": "azure", "path": "/walg", "azure-container": "cont",
                                                   "azure-account": "acct", "azure-key-type": "shared", "azure-key": "k=="}
    sas = repo.repository({"WALG_AZ_PREFIX": "azure://cont", "AZURE_STORAGE_ACCOUNT": "acct",
                           "AZURE_STORAGE_SAS_TOKEN": "?sv=1&sig=x"}, "demo")
    assert sas is not None and sas.option("azure-key-type") == "sas" and sas.option("azure-key") == "sv=1&sig=x"
    assert refused({"WALG_AZ_PREFIX": "azure://c/p", "AZURE_STORAGE_ACCOUNT": "a",
                    "AZURE_CLIENT_ID": "sp"}).variable == "AZURE_STORAGE_ACCESS_KEY"
    assert refused({"WALG_AZ_PREFIX": "azure://c/p"}).variable == "AZURE_STORAGE_ACCOUNT"


def test_clone_repository_with_its_own_credentials_or_the_clusters() -> None:
    env = {"WAL_S3_BUCKET": "mine", "AWS_ENDPOINT": "https://minio:9000", **KEYS, "AWS_SESSION_TOKEN": "t",
           "CLONE_WAL_S3_BUCKET": "theirs", "CLONE_AWS_ACCESS_KEY_ID": "AKIA2", "CLONE_AWS_SECRET_ACCESS_KEY": "sec2"}
    other = repo.repository(env, "prod", "CLONE_")
    assert other is not None
    opts = dict(other.options)
    assert (opts["s3-bucket"], opts["s3-key"], opts["s3-key-secret"], opts["path"]) == ("theirs", "AKIA2", "sec2", "/prod")
    assert "s3-token" not in opts, "the cluster's session token belongs to the cluster's own keys"
    assert opts["s3-endpoint"] == "minio" and opts["storage-port"] == "9000", "endpoint falls back to AWS_ENDPOINT"
    same = repo.repository({**env, "CLONE_AWS_ACCESS_KEY_ID": "", "CLONE_AWS_SECRET_ACCESS_KEY": ""}, "prod", "CLONE_")
    assert same is not None and same.option("s3-key") == "AKIA1" and same.option("s3-token") == "t"
    assert repo.repository({"WAL_S3_BUCKET": "mine"}, "prod", "CLONE_") is None
    assert refused({"CLONE_WAL_S3_BUCKET": "b", "CLONE_AWS_ENDPOINT": "http://x"}, "CLONE_").variable == "CLONE_AWS_ENDPOINT"


def test_clone_renders_a_self_contained_config_of_the_source() -> None:
    env = {"SCOPE": "copy", "ETCD_HOST": "etcd:2379", "WAL_S3_BUCKET": "mine", "AWS_ENDPOINT": "https://minio:9000",
           **KEYS, "CLONE_METHOD": "CLONE_WITH_WALE", "CLONE_SCOPE": "prod", "CLONE_WAL_S3_BUCKET": "theirs",
           "CLONE_AWS_ACCESS_KEY_ID": "AKIA2", "CLONE_AWS_SECRET_ACCESS_KEY": "sec2",
           "CLONE_AWS_ENDPOINT": "https://other.example", "CLONE_TARGET_TIME": "2026-01-01 00:00:00+00:00"}
    files = render.render_all(settings.load(env, FACTS))
    source = configparser.ConfigParser(interpolation=None)
    source.read_string(files["pgbackrest-clone.conf"][0])
    g = source["global"]
    assert (g["repo1-s3-bucket"], g["repo1-s3-key"], g["repo1-s3-endpoint"]) == ("theirs", "AKIA2", "other.example")
    assert "repo1-storage-port" not in g and "repo1-retention-full" not in g
    assert files["pgbackrest-clone.conf"][1] == 0o600
    own = configparser.ConfigParser(interpolation=None)
    own.read_string(files["pgbackrest.conf"][0])
    assert own["global"]["repo1-s3-bucket"] == "mine" and own["global"]["repo1-retention-full"] == "5"


def test_wal_e_and_wal_g_variables_are_mapped_or_refused() -> None:
    s = settings.load({"WALG_S3_PREFIX": "s3://bk/p", "USE_WALG_BACKUP": "true", "WALG_UPLOAD_CONCURRENCY": "4"}, FACTS)
    assert s.pgbackrest and s.repo is not None and s.repo.option("s3-bucket") == "bk"
    assert any("USE_WALG_BACKUP ignored" in n for n in s.notes)
    assert any("WALG_UPLOAD_CONCURRENCY" in n and "ignored" in n for n in s.notes)
    for var in ("WALG_LIBSODIUM_KEY", "WALG_PGP_KEY", "WALG_FILE_PREFIX"):
        with pytest.raises(EnvError) as caught:
            settings.load({var: "x"}, FACTS)
        assert caught.value.variable == var
    assert settings.load({"WALG_FILE_PREFIX": "/backups", "PGBACKREST": "true", "PGBACKREST_REPO_PATH": "/backups"},
                         FACTS).pgbackrest
