"""Moved to howdah.core.status (the agent builds the snapshot; the API only serves it).
This name stays for code written against it; import howdah.core.status instead."""
from howdah.core.status import *  # noqa: F401,F403
from howdah.core.status import NodeStatus  # noqa: F401
