"""What the store implementations share: mapping backend failures to ``StoreUnavailable``, the not-found
error, and the upkeep part of the contract for stores with nothing to keep up. The contract itself is
``service.core.ports.FaceStore``: the core owns it."""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from ..core.records import IndexState
from ..errors import PersonNotFound, StoreUnavailable

T = TypeVar("T")


def missing_person(person_id: str) -> PersonNotFound:
    return PersonNotFound(f"no person with id {person_id!r}", details={"person_id": person_id})


def unavailable_on(failures: tuple[type[BaseException], ...],
                   log: logging.Logger) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """A decorator mapping exactly ``failures`` (a backend that is down, slow or out of disk) to
    ``StoreUnavailable`` (503); every other exception is a bug and propagates unchanged."""
    def decorate(fn: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> T:
            try:
                return fn(*args, **kwargs)
            except failures as exc:
                log.error("store call failed", extra={"op": fn.__name__, "error": type(exc).__name__})
                raise StoreUnavailable(details={"op": fn.__name__}) from exc
        return wrapper
    return decorate


class NothingToKeepUp:
    """The upkeep part of the contract for stores that persist nothing worth compacting (the memory store)
    or are only ever read (the old Chroma-only format, for ``enroll migrate``)."""
    erasures_pending = False

    def compact(self) -> dict[str, Any]:
        return {}

    def upkeep(self) -> None:
        pass

    def index_state(self) -> IndexState:
        return IndexState(generation=0, lag=0, centred=False)
