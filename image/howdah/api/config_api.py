"""GET, PATCH and PUT /config: the dynamic configuration in the DCS.

PATCH merges the body into the stored config (objects merge key by key, a
``null`` deletes the key, anything else replaces) and writes it back by
compare-and-swap on the key's index: a concurrent writer makes it 409.  PUT
replaces the whole config.  Both refuse (400) a config the agents would
reject (a wrongly typed value, a parameter name that is no GUC identifier);
one that breaks ``loop_wait + 2 * retry_timeout <= ttl`` is stored as given
and the agents use adjusted values, with a WARNING, as Patroni does;
``{"pause": true}`` and ``{"pause": null}`` pause and resume the cluster.
"""
from __future__ import annotations

from typing import Any, Mapping

from howdah.api.base import ControlHandler, TextReply
from howdah.api.views import dumps, read_cluster
from howdah.core.merge import merge_patch
from howdah.core.settings import SettingsError, build_settings


def validate(config: Mapping[str, Any]) -> None:
    try:
        build_settings(config, {})
    except SettingsError as e:
        raise TextReply(400, f"invalid configuration: {e}") from None
    except (TypeError, ValueError, AttributeError) as e:
        raise TextReply(400, f"invalid configuration: {e}") from None


class ConfigHandler(ControlHandler):
    sensitive_read = True

    async def get(self) -> None:
        view = (await self.blocking(read_cluster, self.control.dcs)).view
        if view.config_index is None:
            raise TextReply(502, "no configuration in the DCS")
        self.write_json(200, dict(view.config))

    async def patch(self) -> None:
        body = self.json_body()
        view = (await self.blocking(read_cluster, self.control.dcs)).view
        if view.config_index is None:
            raise TextReply(503, "no configuration in the DCS to patch")
        new = merge_patch(view.config, body)
        if new != view.config:
            validate(new)
            if not await self.blocking(self.control.dcs.write_config, new, view.config_index):
                raise TextReply(409, "the configuration changed meanwhile; read it again and retry")
        self.control.wake()
        self.set_status(200)
        self.finish(dumps(new))

    async def put(self) -> None:
        body = self.json_body()
        view = (await self.blocking(read_cluster, self.control.dcs)).view
        if body != view.config:
            validate(body)
            if not await self.blocking(self.control.dcs.write_config, body, view.config_index):
                raise TextReply(409, "the configuration changed meanwhile; read it again and retry")
        self.control.wake()
        self.write_json(200, body)
