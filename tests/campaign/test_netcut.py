"""The campaign's partition (harness/netcut.py) is a real one: with node a cut,
a and its peer b cannot reach each other (refused under REJECT, hanging under
DROP), a cannot reach etcd, b still can, a still reaches itself and a client
outside the nodes still reaches a; an established connection is cut too, and
healing restores everything and leaves no rule behind.  Seconds."""
from __future__ import annotations

import socket
import subprocess
import sys
from typing import Iterator

import pytest

from harness import netcut

pytestmark = pytest.mark.local


def _listen() -> tuple[socket.socket, int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    return s, s.getsockname()[1]


@pytest.fixture
def servers() -> Iterator[dict[str, int]]:
    """Three TCP servers (nodes a and b, and "etcd") run by child processes,
    answering every connection with one line per line received."""
    procs, ports = [], {}
    code = ("import socket,sys,threading\n"
            "s=socket.socket();s.bind(('127.0.0.1',0));s.listen(16)\n"
            "print(s.getsockname()[1],flush=True)\n"
            "def h(c):\n"
            "  f=c.makefile('rb')\n"
            "  for line in f: c.sendall(b'ok\\n')\n"
            "while True:\n"
            "  c,_=s.accept();threading.Thread(target=h,args=(c,),daemon=True).start()\n")
    try:
        for name in ("a", "b", "etcd"):
            p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
            procs.append(p)
            assert p.stdout is not None
            ports[name] = int(p.stdout.readline())
            ports[f"{name}_pid"] = p.pid
        yield ports
    finally:
        for p in procs:
            p.kill()
            p.wait()


def _reach(net: netcut.NetCut, node: str | None, ports: list[int]) -> list[str]:
    """From one process in node's cgroup (None: outside any), a connection to
    each port at once: ok, refused or timeout (1 s) for each."""
    code = (f"import os,socket,threading\nnode={node!r}\n"
            f"if node: open('{net.base}/'+node+'/cgroup.procs','w').write(str(os.getpid()))\n"
            "out={}\n"
            "def one(p):\n"
            " try:\n"
            "  s=socket.create_connection(('127.0.0.1',p),timeout=1);s.sendall(b'x\\n')\n"
            "  out[p]='ok' if s.recv(3)==b'ok\\n' else 'bad'\n"
            " except (ConnectionRefusedError,ConnectionResetError): out[p]='refused'\n"
            " except OSError: out[p]='timeout'\n"
            f"ts=[threading.Thread(target=one,args=(p,)) for p in {ports!r}]\n"
            "[t.start() for t in ts];[t.join() for t in ts]\n"
            f"print(' '.join(out[p] for p in {ports!r}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_reject_and_drop_cut_the_node_both_ways_and_heal(servers: dict[str, int]) -> None:
    why = netcut.unavailable()
    if why:
        pytest.skip(why)
    a, b, etcd = servers["a"], servers["b"], servers["etcd"]
    net = netcut.NetCut({"a": (a,), "b": (b,)}, [etcd])
    try:
        net.enroll("a", [servers["a_pid"]])
        net.enroll("b", [servers["b_pid"]])
        assert net.member("a", servers["a_pid"])

        def matrix() -> dict[str, str]:
            got = dict(zip(["a->b", "a->etcd", "a->a"], _reach(net, "a", [b, etcd, a])))
            got |= dict(zip(["b->a", "b->etcd"], _reach(net, "b", [a, etcd])))
            return got | {"client->a": _reach(net, None, [a])[0]}

        everyone = dict.fromkeys(["a->b", "a->etcd", "b->a", "a->a", "b->etcd", "client->a"], "ok")
        assert matrix() == everyone
        # an established connection of b to a, opened before the cut
        opener = subprocess.Popen(
            [sys.executable, "-c",
             f"open('{net.base}/b/cgroup.procs','w').write(str(__import__('os').getpid()))\n"
             "import socket,sys\n"
             f"s=socket.create_connection(('127.0.0.1',{a}),timeout=2)\n"
             "s.sendall(b'x\\n');print(s.recv(3)==b'ok\\n',flush=True)\n"
             "sys.stdin.readline()\n"
             "try:\n s.sendall(b'x\\n');print(s.recv(3)==b'ok\\n',flush=True)\n"
             "except OSError as e:\n print('cut',type(e).__name__,flush=True)\n"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert opener.stdout is not None and opener.stdin is not None
        assert opener.stdout.readline().strip() == "True"
        for how, cut in (("reject", "refused"), ("drop", "timeout")):
            net.cut("a", how)
            assert matrix() == everyone | {"a->b": cut, "a->etcd": cut, "b->a": cut}, how
            if how == "reject":
                opener.stdin.write("\n")
                opener.stdin.flush()
                got = opener.stdout.readline().strip()
                assert got == "cut ConnectionResetError", f"established connection: {got}"
            net.heal()
            assert matrix() == everyone, f"after healing {how}"
        opener.kill()
        opener.wait()
    finally:
        net.close()
    assert not [t for t in ("filter", "mangle") for tag, _ in netcut._tagged_rules(t)
                if tag == net.tag], "rules left behind"
