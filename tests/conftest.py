"""Suite-wide setup shared by every tier."""
import os
import signal

import pytest

# A shell that starts the suite in the background (`tools/test &` in a script) hands it
# SIGINT and SIGQUIT as ignored, and ignored dispositions survive exec into every child
# (stand-in postmasters, agents, `--watch` CLIs). Tests rely on the default actions, so
# set them here, whatever started the suite.
for _sig, _handler in ((signal.SIGINT, signal.default_int_handler), (signal.SIGQUIT, signal.SIG_DFL)):
    if signal.getsignal(_sig) == signal.SIG_IGN:
        signal.signal(_sig, _handler)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--dcs", choices=("etcd3", "etcd"), default=None,
                     help="DCS of the local tier's clusters: etcd3 (v3 API, v2 off; the "
                          "default) or etcd (v2 API); tests marked own_dcs pick their own")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "own_dcs: the test starts the DCS servers it needs "
                            "itself (not run again by the `--dcs etcd` pass)")
    chosen = config.getoption("--dcs")
    if chosen:
        os.environ["HARNESS_DCS"] = chosen
