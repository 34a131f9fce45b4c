"""The PostgreSQL major a node runs: PG_VERSION of the data, then PGVERSION, then the image's."""
import pytest

from howdah.entrypoint import pgversion, settings
from howdah.entrypoint.errors import EnvError
from howdah.entrypoint.memory import sizing

FACTS = settings.Facts(hostname="node1", ip="172.20.0.5", memory=sizing(2 * 1024 ** 3))

BASE = {"SCOPE": "demo", "ETCD_HOSTS": "etcd:2379"}


def facts(majors, on_disk=None):
    from dataclasses import replace
    return replace(FACTS, pg_majors=majors, read_data_major=lambda _p: on_disk)


def test_default_is_the_newest_major_in_the_image():
    s = settings.load(dict(BASE), facts(("15", "17")))
    assert s.pgversion == "17" and s.bin_dir == "/usr/lib/postgresql/17/bin"


def test_the_data_directory_decides_over_pgversion():
    s = settings.load({**BASE, "PGVERSION": "17"}, facts(("15", "17"), on_disk="15"))
    assert s.pgversion == "15" and s.bin_dir == "/usr/lib/postgresql/15/bin"


def test_data_of_a_major_the_image_lacks_stops_with_one_line():
    with pytest.raises(EnvError) as e:
        settings.load(dict(BASE), facts(("17",), on_disk="15"))
    line = e.value.line()
    assert "\n" not in line and "PGDATA" in line and "PostgreSQL 15 data" in line and "not touched" in line


def test_pgversion_not_in_the_image_is_refused():
    with pytest.raises(EnvError) as e:
        settings.load({**BASE, "PGVERSION": "12"}, facts(("17",)))
    assert "PGVERSION" in e.value.line() and "17" in e.value.line()


def test_pgversion_must_be_a_number():
    with pytest.raises(EnvError) as e:
        settings.load({**BASE, "PGVERSION": "17.2"}, facts(("17",)))
    assert "PGVERSION" in e.value.line()


def test_reads_pg_version_and_installed_majors(tmp_path):
    (tmp_path / "data").mkdir()
    assert pgversion.data_major(str(tmp_path / "data")) is None
    (tmp_path / "data" / "PG_VERSION").write_text("16\n")
    assert pgversion.data_major(str(tmp_path / "data")) == "16"
    for m in ("13", "17"):
        (tmp_path / "lib" / m / "bin").mkdir(parents=True)
        (tmp_path / "lib" / m / "bin" / "postgres").write_text("")
    (tmp_path / "lib" / "16").mkdir()  # no server binary: client only
    assert pgversion.installed_majors(str(tmp_path / "lib")) == ("13", "17")
