"""howdahctl: the operator's command line, one module per subcommand.

``main`` parses the arguments and dispatches; ``context`` loads the agent's
YAML (plus PATRONI_* overrides) and opens the DCS and REST clients; ``ui``
holds prompts, progress and tables. Every failure surfaces as one line on
stderr and a non-zero exit status, never a traceback.
"""
