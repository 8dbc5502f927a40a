"""Live training runs: one per session, at most ``MAX_CONCURRENT_RUNS`` at once, each in its own thread.

The page's generator polls its session's run (``Run.snapshot``) and yields at most once a second; the
Stop button sets the run's stop flag; a run whose page stopped polling (closed, or its event cancelled)
for ``ABANDONED_SECONDS`` stops by itself, so a slot is never held by nobody. No UI library here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import options as o


class RunRefused(ValueError):
    """A run cannot start (this session has one going, or the global cap is reached)."""


@dataclass
class Run:
    session: str
    config: Any
    stop: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    polled: float = field(default_factory=time.monotonic)
    latest: Any = None  # the trainer's RunResult, updated after each step
    error: BaseException | None = None
    version: int = 0  # bumps after each step: the poller yields only when something changed

    def heartbeat(self) -> None:
        self.polled = time.monotonic()

    def abandoned(self, timeout: float) -> bool:
        return time.monotonic() - self.polled > timeout


class RunRegistry:
    def __init__(self, max_runs: int = o.MAX_CONCURRENT_RUNS, abandoned_after: float = o.ABANDONED_SECONDS):
        self.max_runs = max_runs
        self.abandoned_after = abandoned_after
        self._lock = threading.Lock()
        self._runs: dict[str, Run] = {}

    def active(self) -> int:
        with self._lock:
            return len(self._runs)

    def get(self, session: str) -> Run | None:
        with self._lock:
            return self._runs.get(session)

    def start(self, session: str, config: Any, train: Callable) -> Run:
        """Start ``train(config, on_step, should_stop)`` in a thread for ``session``, or ``RunRefused``."""
        with self._lock:
            if session in self._runs:
                raise RunRefused("a training run is already going in this session: wait for it to finish or "
                                 "press Stop first")
            if len(self._runs) >= self.max_runs:
                raise RunRefused(f"the global cap of {self.max_runs} concurrent training runs is reached "
                                 "(every visitor shares this CPU): try again in a minute")
            run = Run(session, config)
            self._runs[session] = run

        def on_step(result) -> None:
            run.latest = result
            run.version += 1

        def should_stop() -> bool:
            return run.stop.is_set() or run.abandoned(self.abandoned_after)

        def work() -> None:
            try:
                run.latest = train(config, on_step=on_step, should_stop=should_stop)
                run.version += 1
            except BaseException as err:  # reported to the poller
                run.error = err
            finally:
                with self._lock:
                    self._runs.pop(session, None)
                run.done.set()

        threading.Thread(target=work, name=f"training-lab-{session[:8]}", daemon=True).start()
        return run

    def stop(self, session: str) -> bool:
        run = self.get(session)
        if run is None:
            return False
        run.stop.set()
        return True


def follow(run: Run, every: float = o.UPDATE_SECONDS, poll: float = 0.1):
    """Yield ``run.latest`` at most once every ``every`` seconds while it changes, then the final result."""
    last_version, last_yield = -1, 0.0
    while not run.done.is_set():
        run.heartbeat()
        now = time.monotonic()
        if run.version != last_version and run.latest is not None and now - last_yield >= every:
            last_version, last_yield = run.version, now
            yield run.latest, False
        run.done.wait(poll)
    if run.error is not None:
        raise run.error
    time.sleep(max(0.0, every - (time.monotonic() - last_yield)))  # the final update keeps the rate too
    yield run.latest, True


REGISTRY = RunRegistry()
