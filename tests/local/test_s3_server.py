"""The test S3 server (tests/harness/s3.py: moto behind HAProxy's TLS) with the real pgBackRest:
a 5 MB object put, listed and read back over HTTPS, the certificate checked against the test CA,
and a wrong CA refused."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

pytest.importorskip("moto")
pytest.importorskip("cryptography")

from harness.s3 import S3Server  # noqa: E402

pytestmark = [pytest.mark.local, pytest.mark.own_dcs]  # no DCS involved: the --dcs etcd pass skips it


@pytest.fixture
def s3() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


def conf(s3: S3Server, bucket: str, ca_file: Path) -> Path:
    path = s3.dir / f"pgbackrest-{bucket}.conf"
    path.write_text(f"""[global]
repo1-type=s3
repo1-path=/roundtrip
repo1-s3-bucket={bucket}
repo1-s3-endpoint=localhost
repo1-storage-port={s3.port}
repo1-s3-region={s3.region}
repo1-s3-uri-style=path
repo1-s3-key={s3.access_key}
repo1-s3-key-secret={s3.secret_key}
repo1-storage-ca-file={ca_file}
lock-path={s3.dir}/lock
log-level-console=warn
log-level-file=off
""")
    return path


def pgbackrest(config: Path, *args: str, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["pgbackrest", f"--config={config}", *args], input=data, capture_output=True, timeout=120)


def test_pgbackrest_put_list_get_over_tls(s3: S3Server) -> None:
    s3.create_bucket("howdah-roundtrip")
    config = conf(s3, "howdah-roundtrip", s3.ca_file)
    data = os.urandom(5 * 1024 * 1024)
    put = pgbackrest(config, "repo-put", "blob", data=data)
    assert put.returncode == 0, put.stderr.decode(errors="replace") + s3.log_text()
    listed = pgbackrest(config, "repo-ls", "--recurse")
    assert listed.returncode == 0 and listed.stdout.decode().split() == ["blob"], listed
    got = pgbackrest(config, "repo-get", "blob")
    assert got.returncode == 0 and got.stdout == data, got.stderr
    assert s3.keys("howdah-roundtrip") == ["roundtrip/blob"]


def test_a_certificate_from_another_ca_is_refused(s3: S3Server, tmp_path: Path) -> None:
    s3.create_bucket("howdah-wrong-ca")
    with S3Server() as other:
        other_ca = tmp_path / "other-ca.pem"
        other_ca.write_bytes(other.ca_file.read_bytes())
    # pgBackRest retries a failed request until io-timeout (60 s by default): keep it short
    put = pgbackrest(conf(s3, "howdah-wrong-ca", other_ca), "--io-timeout=3", "repo-put", "blob", data=b"x")
    assert put.returncode != 0
    assert b"unable to verify certificate" in put.stderr, put.stderr
    assert s3.keys("howdah-wrong-ca") == []
