"""Errors a user can act on: each names the place (file:line, field path) and what would be right."""

from __future__ import annotations


class CascadeError(Exception):
    """Base class of errors caused by user input; the CLI turns them into exit code 2."""


class ScenarioError(CascadeError):
    """One or more problems in a scenario file, each located at file:line and a field path."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class Problem:
    """A single located problem in a user's file."""

    __slots__ = ("file", "line", "path", "message")

    def __init__(self, file: str, line: int | None, path: str, message: str):
        self.file, self.line, self.path, self.message = file, line, path, message

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"

    def __repr__(self) -> str:
        return f"Problem({str(self)!r})"


class EngineLimitError(CascadeError):
    """An engine cannot handle this scenario within its limits (the message says which engine can)."""


class DataFileError(CascadeError):
    """A problem in a user's data file (corpus, queries, tickets), located at file:line and a column."""

    def __init__(self, problem: Problem):
        self.problem = problem
        super().__init__(str(problem))
