"""howdahctl edit-config: change the dynamic configuration in the DCS.

Changes come from $EDITOR, --set key.path=value, --pg param=value or
--apply/--replace FILE; the diff is shown and, once confirmed, written by
compare-and-swap on the config key's index, so a concurrent change is never
overwritten. The agents pick it up on their next cycle.
"""
from __future__ import annotations

import argparse
import copy
import difflib
import os
import shlex
import subprocess
import sys
import tempfile
from typing import Any, Mapping, Sequence

import yaml

from howdah.core.merge import merge_patch
from howdah.core.settings import SettingsError, build_settings

from .context import Ctx
from .errors import CtlError
from .ui import confirm

PG_PARAMS = ("postgresql", "parameters")


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("edit-config", help="edit the cluster's dynamic configuration")
    p.add_argument("-s", "--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="set a dotted key (value read as YAML; empty or null deletes it)")
    p.add_argument("-p", "--pg", dest="pgs", action="append", default=[], metavar="PARAM=VALUE",
                   help="set postgresql.parameters.PARAM (empty or null deletes it)")
    p.add_argument("--apply", metavar="FILE", help="merge a YAML file ('-' for stdin) in")
    p.add_argument("--replace", metavar="FILE", help="replace the config with a YAML file")
    p.add_argument("--force", action="store_true", help="apply without asking")
    p.set_defaults(run=run)


def split_assignment(text: str, option: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise CtlError(f"{option} {text!r}: expected key=value")
    return key.strip(), value.strip()


def key_path(key: str) -> list[str]:
    """Dotted path; a PostgreSQL parameter name may itself hold dots."""
    parts = key.split(".")
    if parts[:2] == list(PG_PARAMS) and len(parts) > 3:
        return [*PG_PARAMS, ".".join(parts[2:])]
    if any(not p for p in parts):
        raise CtlError(f"--set {key!r}: empty component in the key path")
    return parts


def yaml_value(text: str) -> Any:
    if text == "":
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def pg_value(text: str) -> Any:
    """Numbers stay numbers; on/off/true stay the strings PostgreSQL expects."""
    if text == "" or text.lower() in ("null", "~"):
        return None
    value = yaml_value(text)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else text


def set_path(config: dict[str, Any], path: Sequence[str], value: Any) -> None:
    node = config
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            if value is None:
                return
            child = node[key] = {}
        node = child
    if value is None:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value


def apply_changes(config: Mapping[str, Any], sets: Sequence[str],
                  pgs: Sequence[str]) -> dict[str, Any]:
    new = copy.deepcopy(dict(config))
    for item in sets:
        key, value = split_assignment(item, "--set")
        set_path(new, key_path(key), yaml_value(value))
    for item in pgs:
        key, value = split_assignment(item, "--pg")
        set_path(new, [*PG_PARAMS, key], pg_value(value))
    return new


def dump(config: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(config), default_flow_style=False, sort_keys=True) if config else ""


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    lines = difflib.unified_diff(dump(old).splitlines(True), dump(new).splitlines(True),
                                 "before", "after")
    return "".join(lines)


def parse_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        value = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise CtlError(f"{source} is not valid YAML"
                       + (f" (line {mark.line + 1})" if mark else "")) from None
    if not isinstance(value, dict):
        raise CtlError(f"{source} must hold a YAML mapping")
    return value


def read_file(path: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if path == "-" else open(path).read()
    except OSError as exc:
        raise CtlError(f"cannot read {path}: {exc.strerror}") from None
    return parse_yaml(text, "stdin" if path == "-" else path)


def edit_in_editor(config: Mapping[str, Any]) -> dict[str, Any]:
    editor = os.environ.get("EDITOR") or os.environ.get("VISUAL") or "vi"
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="howdah-config-",
                                     delete=False) as fh:
        fh.write(dump(config))
    try:
        try:
            code = subprocess.call([*shlex.split(editor), fh.name])
        except OSError as exc:
            raise CtlError(f"cannot run editor {editor!r}: {exc.strerror}; set $EDITOR") from None
        if code != 0:
            raise CtlError(f"editor {editor!r} exited with status {code}; nothing changed")
        with open(fh.name) as edited:
            return parse_yaml(edited.read(), "the edited config")
    finally:
        os.unlink(fh.name)


def validate(config: Mapping[str, Any]) -> None:
    try:
        build_settings(config, {})
    except SettingsError as exc:
        raise CtlError(f"refusing the new config: {exc}") from None


def run(ctx: Ctx, args: argparse.Namespace) -> int:
    snap = ctx.dcs().existing()
    old = dict(snap.view.config)
    if args.replace:
        new = read_file(args.replace)
    elif args.apply or args.sets or args.pgs:
        new = merge_patch(old, read_file(args.apply)) if args.apply else old
        new = apply_changes(new, args.sets, args.pgs)
    else:
        new = edit_in_editor(old)
    change = diff(old, new)
    if not change:
        ctx.say("no changes")
        return 0
    validate(new)
    ctx.say(change.rstrip("\n"))
    confirm("Apply these changes?", args.force, ctx.stdin, ctx.stdout)
    ctx.dcs().cas_config(new, snap.view.config_index)
    ctx.say("configuration changed")
    return 0
