"""Prepare inputs on worker threads while the model runs (Pillow decodes and resizes without the GIL)."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def prefetch(
    fn: Callable[[T], R], items: Iterable[T], *, ahead: int, workers: int | None = None
) -> Iterator[tuple[T, R | Exception]]:
    """Yield `(item, fn(item))` in order, keeping up to `ahead` items in preparation on worker threads.

    An exception raised by `fn` is yielded in place of its result, so one bad input does not stop the rest.
    """
    workers = workers or min(4, os.cpu_count() or 1)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="zoo-prefetch")
    try:
        pending: deque[tuple[T, Future[R]]] = deque()
        source = iter(items)
        for item in source:
            pending.append((item, pool.submit(fn, item)))
            if len(pending) >= ahead:
                break
        while pending:
            item, future = pending.popleft()
            nxt = next(source, _END)
            if nxt is not _END:
                pending.append((nxt, pool.submit(fn, nxt)))
            try:
                result: R | Exception = future.result()
            except Exception as e:  # handed to the caller, which reports it per item
                result = e
            yield item, result
    finally:
        # Stopped early (an error, Ctrl-C, a closed generator): drop the queued work instead of finishing it.
        pool.shutdown(wait=False, cancel_futures=True)


_END = object()
