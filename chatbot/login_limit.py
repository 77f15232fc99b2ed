"""Failed-login rate limiting: after ``max_failures`` failed logins for one user name, or
from one client address, within ``window_s`` seconds, every further login for that name or
from that address (even with the right password) is refused until the oldest of those
failures is ``window_s`` old. A success does not clear failures: they age out."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

MAX_KEYS = 10_000  # forget expired entries past this many names and addresses


class LoginLimiter:
    """Counts failed logins per user name and per client address in a sliding window."""

    def __init__(
        self,
        max_failures: int = 5,
        window_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_failures < 1:
            raise ValueError(f"max_failures must be at least 1, got {max_failures}")
        if window_s <= 0:
            raise ValueError(f"window_s must be positive, got {window_s}")
        self.max_failures = max_failures
        self.window_s = window_s
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _keys(name: str, address: str | None) -> list[str]:
        return [f"user:{name}"] + ([f"addr:{address}"] if address else [])

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def retry_after(self, name: str, address: str | None) -> float:
        """Seconds until a login for ``name`` from ``address`` may be tried; 0: now."""
        now = self.clock()
        wait = 0.0
        with self._lock:
            for key in self._keys(name, address):
                times = self._recent(key, now)
                if len(times) >= self.max_failures:
                    wait = max(wait, times[-self.max_failures] + self.window_s - now)
        return wait

    def failed(self, name: str, address: str | None) -> None:
        """Count a failed login for ``name`` and ``address``."""
        now = self.clock()
        with self._lock:
            if len(self._failures) > MAX_KEYS:
                for key in list(self._failures):
                    if not self._recent(key, now):
                        del self._failures[key]
            for key in self._keys(name, address):
                times = self._recent(key, now)
                times.append(now)
                self._failures[key] = times
