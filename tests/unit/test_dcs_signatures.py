"""Every DCS backend has every method of the Dcs protocol with the protocol's parameters
(a backend that missed a new parameter failed only at run time, in the HA loop)."""
from __future__ import annotations

import inspect

import pytest

from howdah.dcs import BACKENDS, backend_class
from howdah.dcs.base import Dcs

METHODS = [name for name, value in vars(Dcs).items() if callable(value) and not name.startswith("_")]


@pytest.mark.parametrize("kind", sorted(BACKENDS))
def test_backend_matches_the_protocol(kind: str) -> None:
    cls = backend_class(kind)
    for name in METHODS:
        assert hasattr(cls, name), f"{cls.__name__} has no {name}()"
        want = [p.name for p in inspect.signature(getattr(Dcs, name)).parameters.values()]
        have = [p.name for p in inspect.signature(getattr(cls, name)).parameters.values()]
        assert have[:len(want)] == want, f"{cls.__name__}.{name}{tuple(have)} != protocol {tuple(want)}"
