"""The pace of model requests shared by every thread of a run: how many are in flight, how many per minute
(requests and tokens), a server's Retry-After, and a stop.

One gate per policy. A request holds an in-flight slot, waits until no Retry-After pause is running and the
per-minute budgets have room, and only then is sent. A 429's Retry-After pauses every request that has not been
sent yet, not only the one that was refused: a server that is over its limit is over it for everyone. `stop()`
(Ctrl-C, or a fatal error in another thread) wakes every waiting request, which then raises `Stopped`.

The per-minute budgets are sliding windows over the last `window` seconds (60 for real; tests shorten it):
pyrate-limiter counts windows too, but not a pause the server asks for, nor a token count that is known only
when the reply arrives (the estimate sent is corrected then), and all three must be decided under one lock.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from agents.policy import PolicyUnavailable


class Stopped(PolicyUnavailable):
    """The run is stopping (Ctrl-C or an error elsewhere): no new request is sent."""


class RequestGate:
    """At most `in_flight` requests at once, `per_minute` requests and `tokens_per_minute` tokens in any
    `window` seconds (None: unlimited), and a shared pause after a Retry-After."""

    def __init__(self, in_flight: int, per_minute: int | None = None, tokens_per_minute: int | None = None,
                 window: float = 60.0):
        self.in_flight, self.per_minute, self.tokens_per_minute, self.window = (
            in_flight, per_minute, tokens_per_minute, window)
        self._slots = threading.BoundedSemaphore(in_flight)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._resume_at = 0.0  # time.monotonic() before which no request is sent
        self._sent: deque[float] = deque()  # send times within the window
        self._tokens: deque[list] = deque()  # [send time, tokens] within the window (tokens corrected later)
        self.paused_seconds = 0.0  # longest pause asked for (reported in the summary's llm stats)

    def __repr__(self) -> str:
        return (f"RequestGate(in_flight={self.in_flight}, per_minute={self.per_minute}, "
                f"tokens_per_minute={self.tokens_per_minute}, window={self.window:g})")

    @contextmanager
    def request(self, tokens: int) -> Iterator[list]:
        """Hold a slot and wait for the turn of a request estimated at `tokens`; yields the window entry whose
        token count `settle` corrects once the reply tells the real one."""
        while not self._slots.acquire(timeout=0.1):
            self._check_stop()
        try:
            yield self._wait_turn(tokens)
        finally:
            self._slots.release()

    def settle(self, entry: list, tokens: int) -> None:
        """The request of `entry` used `tokens` tokens (the server's count replaces the estimate)."""
        with self._lock:
            entry[1] = tokens

    def pause(self, seconds: float) -> None:
        """No request is sent for `seconds` from now (a Retry-After), whichever thread asks next."""
        with self._lock:
            self._resume_at = max(self._resume_at, time.monotonic() + seconds)
            self.paused_seconds = max(self.paused_seconds, seconds)

    def stop(self) -> None:
        """Every waiting and future request raises Stopped."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise Stopped("the run was stopped; no further model request is sent")

    def _wait_turn(self, tokens: int) -> list:
        while True:
            self._check_stop()
            with self._lock:
                now = time.monotonic()
                self._forget(now)
                delay = max(self._resume_at - now, self._request_delay(now), self._token_delay(now, tokens))
                if delay <= 0:
                    entry = [now, tokens]
                    self._sent.append(now)
                    self._tokens.append(entry)
                    return entry
            self._stop.wait(delay)  # wakes at once on stop()

    def _forget(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - self.window:
            self._sent.popleft()
        while self._tokens and self._tokens[0][0] <= now - self.window:
            self._tokens.popleft()

    def _request_delay(self, now: float) -> float:
        if self.per_minute is None or len(self._sent) < self.per_minute:
            return 0.0
        return self._sent[-self.per_minute] + self.window - now  # when the oldest that counts leaves the window

    def _token_delay(self, now: float, tokens: int) -> float:
        if self.tokens_per_minute is None or not self._tokens:
            return 0.0  # an empty window lets any one request through, however large
        used = sum(t for _, t in self._tokens)
        if used + tokens <= self.tokens_per_minute:
            return 0.0
        # Wait until enough of the window's tokens have left it (at least until the oldest leaves).
        need, freed = used + tokens - self.tokens_per_minute, 0
        for sent, t in self._tokens:
            freed += t
            if freed >= need:
                return sent + self.window - now
        return self._tokens[-1][0] + self.window - now
