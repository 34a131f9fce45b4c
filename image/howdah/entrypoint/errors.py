"""The one error type the entrypoint reports: a bad environment variable."""
from __future__ import annotations


class EnvError(Exception):
    """A variable whose value cannot be used.

    Rendered as ONE line that names the variable, says what is wrong and how to fix it;
    the entrypoint prints it and exits 2 before anything is written or started.
    """

    def __init__(self, variable: str, problem: str, fix: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem
        self.fix = fix

    def line(self) -> str:
        return f"howdah-entrypoint: invalid {self.variable}: {self.problem}; {self.fix}"
