"""The one retry policy (tenacity) for every remote call: chat models and literature services.

A transient failure is retried with exponential back-off and jitter; a failure that says how long
to wait (an HTTP ``Retry-After``, carried as a ``retry_after`` attribute on the exception) waits
that long instead, up to ``max_wait``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

_BACKOFF = wait_exponential_jitter(multiplier=0.5, max=8.0)  # 0.5 s, 1 s, 2 s … with jitter, never above 8 s


def _wait(max_wait: float) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        asked = getattr(exc, "retry_after", None)
        if isinstance(asked, (int, float)) and asked >= 0:
            return min(float(asked), max_wait)
        return min(_BACKOFF(state), max_wait)

    return wait


def _stop(retries: int, once: Callable[[BaseException], bool] | None) -> Callable[[RetryCallState], bool]:
    limit = stop_after_attempt(retries + 1)

    def stop(state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        again = once is not None and exc is not None and once(exc) and state.attempt_number >= 2
        return bool(limit(state)) or again

    return stop


def retrying(
    transient: Callable[[BaseException], bool],
    retries: int,
    asynchronous: bool = True,
    max_wait: float = 30.0,
    once: Callable[[BaseException], bool] | None = None,
) -> Any:
    """Retry ``retries`` times on exceptions for which ``transient`` is true — those for which ``once`` is
    true only once — then re-raise the last one."""
    policy = {
        "retry": retry_if_exception(transient),
        "stop": _stop(retries, once),
        "wait": _wait(max_wait),
        "reraise": True,
    }
    return AsyncRetrying(**policy) if asynchronous else Retrying(**policy)  # type: ignore[arg-type]
