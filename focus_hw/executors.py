"""Where sweeps run: a local process pool or a ``dask.distributed`` cluster.

:func:`open_executor` yields the :class:`concurrent.futures.Executor` that a
sweep (:func:`focus_hw.sweep.sweep`, :func:`sim.dse.sweep`) submits its
points to: a process pool of ``jobs`` workers, a ``LocalCluster`` of
``workers`` processes, or the cluster of a running ``scheduler``
(``Client.get_executor()``). :func:`executor_options` adds the matching
``--jobs/--workers/--scheduler`` options to a click command.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib

import click

__all__ = [
    "CONNECT_TIMEOUT_S",
    "SchedulerError",
    "open_executor",
    "executor_options",
    "cli_executor",
]

CONNECT_TIMEOUT_S = 5.0


class SchedulerError(ValueError):
    """A dask scheduler address that is malformed, unreachable or not a scheduler."""


async def _identity(address: str, timeout: float) -> dict:
    from distributed.comm import connect

    comm = await connect(address, timeout=timeout)
    try:
        await comm.write({"op": "identity", "reply": True})
        return await comm.read()
    finally:
        comm.abort()


def _check_scheduler(address: str, timeout: float) -> None:
    """Ask ``address`` who it is, so a bad address fails fast and cleanly
    (a failed ``Client()`` leaves a half-built client that warns at exit)."""
    try:
        info = asyncio.run(asyncio.wait_for(_identity(address, timeout), timeout * 1.5))
    except Exception as e:
        reason = str(e).splitlines()[0] if str(e) else "no answer in time"
        raise SchedulerError(f"dask scheduler {address!r}: {type(e).__name__}: {reason}") from None
    if not isinstance(info, dict) or info.get("type") != "Scheduler":
        raise SchedulerError(f"dask scheduler {address!r}: the server there is not a scheduler")


@contextlib.contextmanager
def open_executor(
    jobs: int | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    *,
    processes: bool = True,
    timeout: float = CONNECT_TIMEOUT_S,
):
    """Yield an Executor: a process pool of ``jobs`` (default: all cores), a
    dask ``LocalCluster`` of ``workers`` (``processes=False``: threads), or
    the cluster behind ``scheduler``; everything started here is closed on exit."""
    chosen = [
        n
        for n, v in (("jobs", jobs), ("workers", workers), ("scheduler", scheduler))
        if v is not None
    ]
    if len(chosen) > 1:
        raise ValueError(f"choose one of jobs, workers, scheduler, not {' and '.join(chosen)}")
    if workers is None and scheduler is None:
        pool = cf.ProcessPoolExecutor(max_workers=jobs)
        try:
            yield pool
        finally:
            pool.shutdown(cancel_futures=True)
        return
    from dask.distributed import Client, LocalCluster

    with contextlib.ExitStack() as stack:
        if scheduler is not None:
            _check_scheduler(scheduler, timeout)
            target = scheduler
        else:
            if workers < 1:
                raise ValueError(f"workers must be >= 1, not {workers}")
            target = stack.enter_context(
                LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=processes,
                    dashboard_address=None,
                )
            )
        client = stack.enter_context(Client(target, timeout=timeout, set_as_default=False))
        yield client.get_executor(pure=False)  # points write files: never merge two


def executor_options(fn):
    """Add ``--jobs``, ``--workers`` and ``--scheduler`` to a click command."""
    fn = click.option(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="run on the dask.distributed scheduler at ADDRESS (e.g. tcp://host:8786)",
    )(fn)
    fn = click.option(
        "--workers",
        type=click.IntRange(min=1),
        default=None,
        help="run on a local dask cluster of this many worker processes",
    )(fn)
    return click.option(
        "--jobs",
        type=click.IntRange(min=1),
        default=None,
        help="local process pool size (default: all cores)",
    )(fn)


class _SchedulerUnusable(click.ClickException):
    exit_code = 2


@contextlib.contextmanager
def cli_executor(jobs, workers, scheduler):
    """:func:`open_executor` for a CLI: conflicting options are a usage error,
    a bad scheduler a one-line error with exit code 2."""
    if scheduler is not None and workers is not None:
        raise click.UsageError("--scheduler and --workers exclude each other")
    if jobs is not None and (scheduler is not None or workers is not None):
        raise click.UsageError(
            "--jobs sizes the local process pool; drop it with --scheduler/--workers"
        )
    try:
        with open_executor(jobs, workers, scheduler) as executor:
            yield executor
    except SchedulerError as e:
        raise _SchedulerUnusable(str(e)) from None
