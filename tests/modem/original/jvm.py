"""The little of Java the original station needs, for an emulation in virtual time.

Java threads become Python generators run by a cooperative :class:`Scheduler`: a thread yields a
predicate (what it is blocked on: a sample to read, the clock, a monitor, a queue) and is resumed
once it holds. A Java thread that throws dies and is recorded in ``Scheduler.deaths``; the others
go on, as in the JVM. ``java.util.Timer`` (a thread per timer, fixed-delay repeats), the
``ArrayList`` iterator's ``ConcurrentModificationException`` and Java's signed bytes are modelled
because the original's behaviour depends on them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")
#: A Java thread's body: yields what it waits for, may return a value to ``yield from``.
Blocking = Generator[Callable[[], bool], None, T]


class JavaException(Exception):
    """An exception thrown in the emulated Java code (its name is the Java class)."""


class IllegalArgumentException(JavaException):
    pass


class NullPointerException(JavaException):
    pass


class ConcurrentModificationException(JavaException):
    pass


class IOException(JavaException):
    pass


def jbyte(value: int) -> int:
    """Java's ``(byte) value``: the low 8 bits as a signed number."""
    return (value + 128) % 256 - 128


def jint(value: int) -> int:
    """Java's ``(int) value`` for a long: the low 32 bits as a signed number."""
    return (value + (1 << 31)) % (1 << 32) - (1 << 31)


def hash_code(data: bytes | list[int]) -> int:
    """``java.util.Arrays.hashCode(byte[])``: ``31 * h + b`` from 1 over signed bytes, int32."""
    h = 1
    for b in data:
        h = jint(31 * h + jbyte(b))
    return h


@dataclass
class _Thread:
    name: str
    body: Generator[Callable[[], bool], None, Any]
    waiting: Callable[[], bool] = field(default=lambda: True)
    alive: bool = True


class Scheduler:
    """Runs the emulated Java threads; ``clock`` is the station's time in seconds."""

    def __init__(self) -> None:
        self.clock = 0.0
        self.threads: list[_Thread] = []
        self.deaths: list[tuple[str, JavaException]] = []

    def start(self, name: str, body: Generator[Callable[[], bool], None, Any]) -> None:
        """``new Thread(body).start()``."""
        self.threads.append(_Thread(name, body))

    def millis(self) -> int:
        """``System.currentTimeMillis()``."""
        return int(self.clock * 1000)

    def sleep(self, millis: int) -> Blocking[None]:
        """``Thread.sleep(millis)``."""
        until = self.clock + millis / 1000.0
        yield lambda: self.clock >= until - 1e-9

    def run(self) -> None:
        """Run every thread until all are blocked."""
        progress = True
        while progress:
            progress = False
            for th in list(self.threads):
                while th.alive and th.waiting():
                    progress = True
                    try:
                        th.waiting = th.body.send(None)
                    except StopIteration:
                        th.alive = False
                    except JavaException as exc:  # uncaught: the thread dies, the JVM goes on
                        th.alive = False
                        self.deaths.append((th.name, exc))
            self.threads = [t for t in self.threads if t.alive]


class Monitor:
    """A Java object's monitor (``synchronized``), not re-entrant (the original never re-enters)."""

    def __init__(self) -> None:
        self.owner: object | None = None

    def enter(self, who: object) -> Blocking[None]:
        yield lambda: self.owner is None
        self.owner = who

    def exit(self) -> None:
        self.owner = None


class BlockingQueue(Generic[T]):
    """``java.util.concurrent.LinkedBlockingQueue``: ``put`` and a blocking ``take``."""

    def __init__(self) -> None:
        self.items: deque[T] = deque()

    def put(self, item: T) -> None:
        self.items.append(item)

    def take(self) -> Blocking[T]:
        yield lambda: bool(self.items)
        return self.items.popleft()


class ArrayList(Generic[T]):
    """``java.util.ArrayList`` with its fail-fast iterator (``modCount``)."""

    def __init__(self) -> None:
        self.items: list[T] = []
        self.mod_count = 0

    def add(self, item: T) -> None:
        self.items.append(item)
        self.mod_count += 1

    def remove(self, item: T) -> None:
        """``remove(Object)``: the first element ``equals`` to ``item``."""
        for i, x in enumerate(self.items):
            if x == item:
                del self.items[i]
                self.mod_count += 1
                return

    def contains(self, item: T) -> bool:
        return any(x == item for x in self.items)

    def __iter__(self) -> Iterator[T]:
        # ArrayList.Itr: hasNext() is ``cursor != size``; next() checks modCount first
        expected, cursor = self.mod_count, 0
        while cursor != len(self.items):
            if self.mod_count != expected:
                raise ConcurrentModificationException("ArrayList modified while iterated")
            item = self.items[cursor]
            cursor += 1
            yield item


class TimerTask:
    """A ``java.util.TimerTask`` whose ``run`` may block (it runs on the timer's thread)."""

    def __init__(self, run: Callable[[], Blocking[None]]) -> None:
        self.run = run
        self.cancelled = False
        self.next_time = 0.0
        self.period = 0.0

    def cancel(self) -> None:
        self.cancelled = True


class Timer:
    """``java.util.Timer``: one thread runs its tasks in time order; ``schedule(task, delay,
    period)`` repeats with a fixed delay, the next run set to ``now + period`` when a run starts
    (``TimerThread.mainLoop``: ``rescheduleMin(currentTime - task.period)``, period negative)."""

    def __init__(self, scheduler: Scheduler, name: str) -> None:
        self._scheduler = scheduler
        self._tasks: list[TimerTask] = []
        scheduler.start(name, self._main_loop())

    def schedule(self, task: TimerTask, delay_ms: int, period_ms: int) -> None:
        task.next_time = self._scheduler.clock + delay_ms / 1000.0
        task.period = period_ms / 1000.0
        self._tasks.append(task)

    def next_time(self) -> float | None:
        live = [t.next_time for t in self._tasks if not t.cancelled]
        return min(live) if live else None

    def _due(self) -> bool:
        self._tasks = [t for t in self._tasks if not t.cancelled]
        return any(t.next_time <= self._scheduler.clock + 1e-9 for t in self._tasks)

    def _main_loop(self) -> Blocking[None]:
        while True:
            yield self._due
            task = min(self._tasks, key=lambda t: t.next_time)
            task.next_time = self._scheduler.clock + task.period
            yield from task.run()
