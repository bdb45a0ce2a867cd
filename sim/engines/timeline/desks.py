"""A verify step staffed by reviewers, on SimPy: a FIFO queue, servers, working hours, waits and bypasses."""

from __future__ import annotations

import math

import numpy as np
import simpy

from sim.scenario.model import Reviewers

DAY_HOURS = 24.0
MINUTES_PER_DAY = 1440.0


class Desk:
    """A verify step staffed by reviewers: a FIFO queue, servers, working hours, bypasses."""

    def __init__(self, env: simpy.Environment, sid: str, cfg: Reviewers, rng: np.random.Generator, record):
        self.env, self.sid, self.cfg, self.rng, self.record = env, sid, cfg, rng, record
        self.queue = simpy.Store(env)
        self.max_wait = cfg.max_wait_hours / DAY_HOURS if cfg.max_wait_hours else math.inf
        self.busy_days = 0.0
        """Reviewer-days spent reviewing within opening hours and the horizon."""
        self.horizon = math.inf
        self.next: Desk | None = None
        self.always_open = cfg.open_hour == 0 and cfg.close_hour == 24 and cfg.workdays == 7
        self._service_times = iter(())
        for _ in range(cfg.servers):
            env.process(self._server())

    def _service(self) -> float:
        """Exponential review time in days, drawn in bulk (one numpy call per 4,096 reviews)."""
        try:
            return next(self._service_times)
        except StopIteration:
            self._service_times = iter(self.rng.exponential(self.cfg.minutes / MINUTES_PER_DAY, 4096).tolist())
            return next(self._service_times)

    def put(self, item: list) -> None:
        """item: [instance (-1 for rework), enqueue time, bypass mask, arrival time]."""
        now = self.env.now
        self._drop_expired(now)
        if self.cfg.queue_limit is not None and len(self.queue.items) >= self.cfg.queue_limit and item[0] >= 0:
            self._leave(item, now, bypassed=True)
            return
        item[1] = now
        self.queue.put(item)

    def _drop_expired(self, now: float) -> None:
        items = self.queue.items  # FIFO: the oldest first, so the expired ones are at the front
        while items and items[0][0] >= 0 and now - items[0][1] > self.max_wait:
            item = items.pop(0)
            self._leave(item, item[1] + self.max_wait, bypassed=True)

    def _leave(self, item: list, when: float, bypassed: bool) -> None:
        if bypassed:
            item[2] |= self.record.bit[self.sid]
        self.record.left(self.sid, item, when, bypassed)
        if self.next is not None:
            self.next.put(item)
        else:
            self.record.complete(item, when)

    def open_days(self, horizon: int) -> float:
        """Reviewer-days of opening hours within the horizon (the denominator of utilisation)."""
        return self.cfg.servers * self.open_between(0.0, float(horizon))

    def open_between(self, start: float, end: float) -> float:
        """Days of opening hours of one reviewer between times `start` and `end` (in days)."""
        if end <= start:
            return 0.0
        if self.always_open:
            return end - start
        cfg, total = self.cfg, 0.0
        for day in range(math.floor(start), math.ceil(end)):
            if day % 7 < cfg.workdays:
                total += max(0.0, min(end, day + cfg.close_hour / DAY_HOURS) - max(start, day + cfg.open_hour / DAY_HOURS))
        return total

    def _closed_for(self, now: float) -> float:
        """Days until the desk is open (0 when open now)."""
        cfg = self.cfg
        day = math.floor(now)
        hour = (now - day) * DAY_HOURS
        if day % 7 < cfg.workdays and cfg.open_hour <= hour < cfg.close_hour:
            return 0.0
        d = day if hour < cfg.open_hour else day + 1
        while d % 7 >= cfg.workdays:
            d += 1
        return d + cfg.open_hour / DAY_HOURS - now

    def _server(self):
        env, record, sid = self.env, self.record, self.sid
        while True:
            item = yield self.queue.get()
            if not self.always_open:
                wait = self._closed_for(env.now)
                if wait > 0:
                    yield env.timeout(wait)
            now = env.now
            if item[0] >= 0 and now - item[1] > self.max_wait:
                self._leave(item, item[1] + self.max_wait, bypassed=True)
                continue
            service = self._service() if item[0] >= 0 else item[4]
            record.started(sid, item, now)
            yield env.timeout(service)
            # Utilisation counts review time within opening hours and the horizon: a review that runs past
            # closing time is finished (overtime) but is not more than 100% of the reviewer's day.
            self.busy_days += self.open_between(now, min(now + service, self.horizon))
            if item[0] >= 0:
                self._leave(item, env.now, bypassed=False)
