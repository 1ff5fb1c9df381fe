"""Failure injection for the replay server: slow, failing or garbled answers on demand.

A test registers a fault through ``POST /_admin/faults``; every non-admin request is
then checked against the faults in the order they were added, and the first active one
whose regex matches (``re.search``) the request path is applied: a delay, then either a
substituted answer (status and/or raw body) or the normal answer. A fault with
``times=N`` is used up after N requests; ``times=null`` lasts until cleared.

This module holds the rules only (no FastAPI): the server wires them in a middleware.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["Fault", "FaultSpec", "FaultTable"]


class FaultSpec(BaseModel):
    """The body of ``POST /_admin/faults``."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="regex searched (re.search) in the request path")
    status: int | None = Field(None, ge=100, le=599, description="status to answer with")
    delay_seconds: float = Field(0.0, ge=0.0, le=600.0, description="sleep before answering")
    body: str | None = Field(None, description="raw text served instead of the normal body")
    content_type: str = Field(
        "application/json",
        description="media type of an injected body (a garbled answer still claims JSON)",
    )
    times: int | None = Field(None, ge=1, description="uses before the fault expires")

    @field_validator("path")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from exc
        return value


@dataclass
class Fault:
    """A registered fault and how many uses it has left (``None``: unlimited)."""

    id: str
    spec: FaultSpec
    pattern: re.Pattern[str]
    remaining: int | None
    applied: int = 0

    @property
    def active(self) -> bool:
        return self.remaining is None or self.remaining > 0

    @property
    def replaces_answer(self) -> bool:
        """True when the normal handler must not run (a status or a body is injected)."""
        return self.spec.status is not None or self.spec.body is not None

    def describe(self) -> dict[str, object]:
        return {
            "id": self.id,
            **self.spec.model_dump(),
            "remaining": self.remaining,
            "applied": self.applied,
        }


class FaultTable:
    """The faults of one server, in the order they were added."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, spec: FaultSpec) -> Fault:
        fault = Fault(
            id=f"fault-{next(self._ids)}",
            spec=spec,
            pattern=re.compile(spec.path),
            remaining=spec.times,
        )
        self._faults.append(fault)
        return fault

    def clear(self) -> None:
        """Forget every fault; ids keep counting so an old id is never reused."""
        self._faults.clear()

    def take(self, path: str) -> Fault | None:
        """The first active fault matching ``path``, with one use consumed; else None.

        Called once per request from the event loop, so the check and the decrement
        cannot interleave with another request's.
        """
        for fault in self._faults:
            if fault.active and fault.pattern.search(path):
                if fault.remaining is not None:
                    fault.remaining -= 1
                fault.applied += 1
                return fault
        return None

    def describe(self) -> list[dict[str, object]]:
        return [fault.describe() for fault in self._faults]
