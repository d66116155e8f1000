"""GETs against Prometheus's HTTP API with retries of transient failures.

Connect errors, timeouts, dropped connections, 5xx and 429 are retried with
exponential backoff: ``backoff * 2**attempt`` seconds, or the server's
``Retry-After`` when it asks for longer (up to a minute). Anything else (a bad
query, another 4xx) fails at once: retrying cannot change the answer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from scalelab.errors import ScalelabError

_TRANSIENT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_LONGEST_RETRY_AFTER = 60.0


class FetchError(ScalelabError):
    """A request that failed for good; the message says how, and after how many tries."""


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 3
    backoff: float = 0.5

    def delay(self, attempt: int, retry_after: float | None) -> float:
        wait = self.backoff * 2**attempt
        if retry_after is None:
            return wait
        return max(wait, min(retry_after, _LONGEST_RETRY_AFTER))


class Fetcher:
    """Shares one ``httpx.Client`` (and its connection pool) between threads."""

    def __init__(self, client: httpx.Client, policy: RetryPolicy):
        self.client = client
        self.policy = policy

    def get(self, path: str, params: dict[str, str]) -> bytes:
        """The body of a 200 answer, or :class:`FetchError` once retries are spent."""
        attempts = self.policy.retries + 1
        for attempt in range(attempts):
            retry_after = None
            try:
                response = self.client.get(path, params=params)
            except _TRANSIENT_ERRORS as exc:
                error = f"{type(exc).__name__}: {exc}"
            except httpx.HTTPError as exc:
                raise FetchError(f"{type(exc).__name__}: {exc}") from exc
            else:
                if response.status_code == 200:
                    return response.content
                error = _describe(response)
                if not _is_transient(response.status_code):
                    raise FetchError(error)
                retry_after = _retry_after(response)
            if attempt + 1 < attempts:
                time.sleep(self.policy.delay(attempt, retry_after))
        raise FetchError(f"{error} (gave up after {attempts} attempts)")


def _is_transient(status: int) -> bool:
    return status == 429 or status >= 500


def _describe(response: httpx.Response) -> str:
    """``HTTP 422: <Prometheus's error text>``, falling back to the start of the body."""
    detail = response.text[:300]
    try:
        payload = response.json()
        if isinstance(payload, dict) and payload.get("error"):
            detail = f"{payload.get('errorType', 'error')}: {payload['error']}"
    except ValueError:
        pass
    return f"HTTP {response.status_code}: {detail}".rstrip(": ")


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None
