"""Suite-wide setup shared by every tier."""
import signal

# A shell that starts the suite in the background (`tools/test &` in a script) hands it
# SIGINT and SIGQUIT as ignored, and ignored dispositions survive exec into every child
# (stand-in postmasters, agents, `--watch` CLIs). Tests rely on the default actions, so
# set them here, whatever started the suite.
for _sig, _handler in ((signal.SIGINT, signal.default_int_handler), (signal.SIGQUIT, signal.SIG_DFL)):
    if signal.getsignal(_sig) == signal.SIG_IGN:
        signal.signal(_sig, _handler)
