"""The package type-checks under mypy --strict (DESIGN.md: annotate everything)."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_mypy_strict_on_the_package() -> None:
    mypy = Path(sys.executable).with_name("mypy")
    if not mypy.exists() and shutil.which("mypy") is None:
        pytest.fail("mypy is missing: tools/setup-host.sh installs it from requirements-dev.txt")
    res = subprocess.run([str(mypy if mypy.exists() else "mypy"), "--strict",
                          "--ignore-missing-imports", "--no-error-summary", "image/howdah"],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
