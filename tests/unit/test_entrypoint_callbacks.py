"""CALLBACK_SCRIPT, the VIP hook and the AWS hook render to one dispatcher for every callback."""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from howdah.entrypoint import callbacks, render, settings
from howdah.entrypoint.errors import EnvError
from howdah.entrypoint.memory import sizing

FACTS = settings.Facts(hostname="node1", ip="172.20.0.5", memory=sizing(2 * 1024 ** 3))


@pytest.fixture
def script(tmp_path: Path) -> str:
    path = tmp_path / "my_callback.sh"
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return str(path)


def agent(**env: str) -> dict[str, Any]:
    files = render.render_all(settings.load(env, FACTS))
    loaded: dict[str, Any] = yaml.safe_load(files["howdah.yml"][0])
    return loaded


def hooks_of(conf: dict[str, Any]) -> list[str]:
    """The --run NAME=COMMAND items of the dispatcher, in order (and every callback is the same)."""
    cbs = conf["postgresql"]["callbacks"]
    assert set(cbs) == set(callbacks.ACTIONS)
    assert len(set(cbs.values())) == 1
    argv = shlex.split(cbs["on_role_change"])
    assert argv[0] == callbacks.DISPATCH
    return [argv[i + 1] for i, word in enumerate(argv) if word == "--run"]


def test_no_hooks_no_callbacks() -> None:
    assert "callbacks" not in agent()["postgresql"]


def test_callback_script_alone(script: str) -> None:
    assert hooks_of(agent(CALLBACK_SCRIPT=script)) == [f"user={script}"]


def test_callback_script_with_arguments(script: str) -> None:
    command = f"{shlex.quote(script)} --verbose"
    assert hooks_of(agent(CALLBACK_SCRIPT=command)) == [f"user={command}"]


def test_callback_script_with_aws(script: str) -> None:
    conf = agent(CALLBACK_SCRIPT=script, EIP_ALLOCATION="eipalloc-123")
    assert hooks_of(conf) == [f"user={script}", f"aws={callbacks.AWS_HOOK}"]


def test_callback_script_with_vip(script: str) -> None:
    conf = agent(CALLBACK_SCRIPT=script, VIP_ADDRESS="10.0.0.5/24")
    assert hooks_of(conf) == [f"user={script}", f"vip={callbacks.VIP_HOOK}"]


def test_all_three_in_fixed_order(script: str) -> None:
    conf = agent(VIP_ADDRESS="10.0.0.5", VIP_NETMASK="24", ELASTIC_IP="203.0.113.7", CALLBACK_SCRIPT=script,
                 HOWDAH_CALLBACK_TIMEOUT="12")
    assert hooks_of(conf) == [f"user={script}", f"vip={callbacks.VIP_HOOK}", f"aws={callbacks.AWS_HOOK}"]
    argv = shlex.split(conf["postgresql"]["callbacks"]["on_start"])
    assert argv[argv.index("--timeout") + 1] == "12" and argv[argv.index("--log") + 1] == callbacks.LOG


def test_hooks_without_user_script() -> None:
    assert hooks_of(agent(VIP_ADDRESS="10.0.0.5/24")) == [f"vip={callbacks.VIP_HOOK}"]
    assert hooks_of(agent(HOWDAH_AWS_HOOK="true")) == [f"aws={callbacks.AWS_HOOK}"]


def test_spilo_configuration_can_still_set_a_callback(script: str) -> None:
    conf = agent(CALLBACK_SCRIPT=script, SPILO_CONFIGURATION="postgresql: {callbacks: {on_reload: /bin/true}}")
    assert conf["postgresql"]["callbacks"]["on_reload"] == "/bin/true"
    assert conf["postgresql"]["callbacks"]["on_start"].startswith(callbacks.DISPATCH)


def test_missing_callback_script_is_one_line_naming_the_variable() -> None:
    with pytest.raises(EnvError) as err:
        settings.load({"CALLBACK_SCRIPT": "/nowhere/cb.sh"}, FACTS)
    line = err.value.line()
    assert err.value.variable == "CALLBACK_SCRIPT" and "\n" not in line
    assert "invalid CALLBACK_SCRIPT" in line and "/nowhere/cb.sh does not exist" in line


def test_not_executable_callback_script(tmp_path: Path) -> None:
    path = tmp_path / "cb.sh"
    path.write_text("#!/bin/sh\n")
    path.chmod(0o644)
    with pytest.raises(EnvError) as err:
        callbacks.from_env({"CALLBACK_SCRIPT": str(path)}, executable=lambda p: False)
    assert err.value.variable == "CALLBACK_SCRIPT" and "not an executable file" in err.value.line()
    assert "chmod +x" in err.value.line()


def test_callback_script_found_on_path() -> None:
    assert callbacks.from_env({"CALLBACK_SCRIPT": "true"}).user == "true"


@pytest.mark.parametrize("env, variable", [
    ({"VIP_ADDRESS": "10.0.0.300"}, "VIP_ADDRESS"),
    ({"VIP_ADDRESS": "10.0.0.5", "VIP_NETMASK": "255.0.255.0"}, "VIP_NETMASK"),
    ({"VIP_ADDRESS": "10.0.0.5/24", "VIP_NETMASK": "24"}, "VIP_NETMASK"),
    ({"VIP_ADDRESS": "10.0.0.5", "VIP_INTERFACE": "eth0; rm -rf /"}, "VIP_INTERFACE"),
    ({"HOWDAH_AWS_HOOK": "maybe"}, "HOWDAH_AWS_HOOK"),
    ({"HOWDAH_CALLBACK_TIMEOUT": "0", "VIP_ADDRESS": "10.0.0.5"}, "HOWDAH_CALLBACK_TIMEOUT"),
])
def test_bad_hook_variables(env: dict[str, str], variable: str) -> None:
    with pytest.raises(EnvError) as err:
        callbacks.from_env(env)
    assert err.value.variable == variable


def test_vip_forms() -> None:
    assert callbacks.from_env({"VIP_ADDRESS": "10.0.0.5"}).vip == "10.0.0.5/32"
    assert callbacks.from_env({"VIP_ADDRESS": "10.0.0.5", "VIP_NETMASK": "255.255.255.0"}).vip == "10.0.0.5/24"
    assert callbacks.from_env({"VIP_ADDRESS": "fd00::5/64"}).vip == "fd00::5/64"
