"""Moved to howdah.config.tls (TLS settings are read by the config, the agent's peer client
and the API alike). This name stays for code written against it; import howdah.config.tls."""
from howdah.config.tls import *  # noqa: F401,F403
from howdah.config.tls import CertReloader, TlsConfigError, member_client_context, server_context  # noqa: F401
