"""Run a coroutine at once, and only give it a task when it has to wait.

Most exchanges on the auth socket never wait: the account is in memory and the
scheme is cheap, so a task per request would cost more than the check itself.
Python 3.12's ``asyncio.eager_task_factory`` does this for every task of a loop;
this is the same for the calls that want it, on 3.11 too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

__all__ = ["start_eagerly"]


def start_eagerly(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """Run ``coro`` up to its first real wait; None when it finished, else the task that
    carries it on (cancelling that task cancels ``coro`` where it waits)."""
    try:
        waiting_on = coro.send(None)
    except StopIteration:
        return None
    return asyncio.ensure_future(_carry_on(coro, waiting_on))


async def _carry_on(coro: Coroutine[Any, Any, None], waiting_on: Any) -> None:
    """Step ``coro`` as a task would: wait for what it yielded, then resume it."""
    while True:
        try:
            if waiting_on is None:
                # A bare yield (asyncio.sleep(0)): give the loop one turn.
                await asyncio.sleep(0)
            else:
                # coro's own await marked the future as waited on; a task clears that
                # mark when it takes the future over, and so does this one.
                waiting_on._asyncio_future_blocking = False
                await waiting_on
        except BaseException as error:
            # The future's exception, or this task's cancellation: raised where coro waits.
            try:
                waiting_on = coro.throw(error)
            except StopIteration:
                return
        else:
            try:
                waiting_on = coro.send(None)
            except StopIteration:
                return
