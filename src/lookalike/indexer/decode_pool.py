"""Decoding in supervised worker processes: a decoder that crashes, hangs or runs out of memory loses one file.

Each worker is a spawned process (no inherited threads, locks or CUDA state) that decodes one file at a time and
streams its messages back over a pipe. The pool hands out the next file when a worker finishes one, and watches
them all:

* a worker that dies (segfault, abort, the kernel's OOM killer) fails its file with ``decoder_crashed``;
* a worker silent for ``timeout`` seconds while the pool waits for it fails its file with ``decode_timeout``;
* a worker's address space is capped (``RLIMIT_AS``), so a file that needs more memory fails with
  ``out_of_memory`` (or, if the decoder aborts on the failed allocation, ``decoder_crashed``);

and a fresh worker takes over the remaining files. A worker that cannot start at all (its imports fail: a broken
install) is not a bad file: a worker says it is ready before it takes a file, and one that dies (or says why it
cannot start) before that hands its file back; after :data:`START_TRIES` such workers in a row the run stops with
:class:`~lookalike.errors.DecoderStartError`, naming the cause, rather than failing every file as crashed.
Back-pressure comes from the pipes: a worker whose messages are not read blocks, and that time does not count as
silence. Indexing reads a pool from a background thread (``file_decoding.ThreadedStream``), a budget of pictures
ahead of the model, so a worker decodes on while the model runs, and :meth:`DecodePool.cancel` ends the reading at
once when the indexing stops.

``multiprocessing`` pools cannot do this (a dead worker breaks the whole ``ProcessPoolExecutor``; torch's
DataLoader ends the iteration), and pebble's pool returns one result per task where videos need a stream, so the
supervision loop is written here (~100 lines).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import resource
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from lookalike.errors import DecoderStartError
from lookalike.indexer.file_decoding import DecodeLimits, Failed, Message, Task, decode_job
from lookalike.indexer.preprocess import Preprocess

log = logging.getLogger(__name__)

DecodeFn = Callable[[Task, Preprocess, DecodeLimits], Iterator[Message]]


@dataclass(frozen=True)
class _Done:
    job: int


@dataclass(frozen=True)
class _CannotStart:
    reason: str


@dataclass(frozen=True)
class _Ready:
    pass


START_TRIES = 3  # workers in a row that die before they are ready: the install is broken, not a file


def _limit_memory(limit_bytes: int | None) -> None:
    if not limit_bytes:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit_bytes = min(limit_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, hard))


def prepare_decoder_process(memory: int | None) -> None:
    """Start-up of a decode worker process: ignore Ctrl-C (the parent's to handle), load FFmpeg, cap memory."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import av  # noqa: F401  (FFmpeg's libraries load before the limit: it is for decoding, not start-up)

    _limit_memory(memory)


def death(exitcode: int | None) -> str:
    """How a worker process ended, in words (a signal's name, or the exit code)."""
    if exitcode is not None and exitcode < 0:
        with contextlib.suppress(ValueError):
            return signal.Signals(-exitcode).name
    return f"exit code {exitcode}"


def _serve(conn: Connection, pre: Preprocess, limits: DecodeLimits, memory: int | None, decode: DecodeFn) -> None:
    """Worker main loop: receive a task, send its messages, then a done marker; stop on None or a closed pipe."""
    try:
        prepare_decoder_process(memory)
    except Exception as e:  # the install is broken, not a file: say why, once, and stop
        with contextlib.suppress(OSError):
            conn.send(_CannotStart(f"{type(e).__name__}: {e}"))
        return
    try:
        conn.send(_Ready())
    except OSError:
        return
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return  # the indexing process is gone
        if task is None:
            return
        try:
            try:
                for message in decode(task, pre, limits):
                    conn.send(message)
            except MemoryError:  # a message too big to send under the memory cap (pickling copies it)
                conn.send(Failed(task.index, "out_of_memory", "decoding needs more memory than the decoder may use"))
            except Exception as e:  # a message that cannot be sent is that file's failure, not the worker's
                conn.send(Failed(task.index, "decoder_error", f"{type(e).__name__}: {e}"))
            conn.send(_Done(task.index))
        except OSError:
            return


class _Worker:
    def __init__(self, ctx: Any, args: tuple[Any, ...]) -> None:
        self.ctx = ctx
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=_serve, args=(child, *args), name="lookalike-decoder", daemon=True)
        self.process.start()
        child.close()
        self.task: Task | None = None
        self.silent = 0.0
        self.ready = False  # it said it started (imports done, memory capped): a death before that is no file's

    def give(self, task: Task | None) -> None:
        self.task, self.silent = task, 0.0
        self.conn.send(task)

    def stop(self, kill: bool = False) -> None:
        if kill and self.process.is_alive():
            self.process.kill()
        else:
            with contextlib.suppress(OSError):
                self.conn.send(None)
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class DecodePool:
    """Decode tasks in ``workers`` supervised processes; iterate to receive their messages as they come.

    Args:
        tasks: the files to decode.
        pre: preprocessing applied in the workers.
        limits: decode limits and video sampling.
        workers: number of processes (at least 1).
        timeout: seconds a worker may stay silent on one file before it is killed.
        memory_bytes: address-space limit per worker (None: unlimited).
        decode: the per-file decode function (a module-level function, so spawned workers can import it).
    """

    def __init__(
        self,
        tasks: Sequence[Task],
        pre: Preprocess,
        limits: DecodeLimits,
        workers: int = 1,
        timeout: float = 60.0,
        memory_bytes: int | None = None,
        decode: DecodeFn = decode_job,
    ) -> None:
        self.tasks = list(tasks)
        self.workers = max(1, min(workers, len(self.tasks) or 1))
        self.timeout = timeout
        self._args = (pre, limits, memory_bytes, decode)
        self.restarts = 0
        self._stillborn = 0  # workers in a row that died before they were ready
        self._cancelled = threading.Event()
        self._workers: list[_Worker] = []  # the iteration's workers, for cancel()

    def cancel(self) -> None:
        """Stop iterating at once, from another thread: for ``file_decoding.ThreadedStream``, whose consumer
        stopped. Busy workers are killed here, so that a read blocked on a message a worker began and never
        finished (a stopped or frozen process) ends too; the iteration ends without the rest of the files (a
        cancelled pool ends as if done, and stays cancelled), and its idle workers are stopped."""
        self._cancelled.set()
        for w in list(self._workers):
            if w.task is not None and w.process.is_alive():
                w.process.kill()

    def __iter__(self) -> Iterator[Message]:
        ctx = mp.get_context("spawn")
        todo = deque(self.tasks)
        pool = self._workers = [_Worker(ctx, self._args) for _ in range(self.workers)]
        try:
            for w in pool:
                self._give(w, pool, todo)
            while (busy := [w for w in pool if w.task is not None]) and not self._cancelled.is_set():
                began = time.monotonic()
                ready = set(wait([w.conn for w in busy], timeout=min(1.0, self.timeout)))
                waited = time.monotonic() - began
                for w in busy:
                    if w.conn not in ready:
                        w.silent += waited
                        if w.silent > self.timeout:
                            if not w.ready:
                                self._restart(w, pool, todo, "no word within the decode timeout")
                                continue
                            yield from self._replace(w, pool, todo, ctx, "decode_timeout")
                        continue
                    while w.task is not None and not self._cancelled.is_set() and w.conn.poll():
                        try:
                            message = w.conn.recv()
                        except (EOFError, OSError):
                            if self._cancelled.is_set():
                                break  # killed by cancel(): nobody waits for its file any more
                            if not w.ready:
                                w.process.join(timeout=5)
                                self._restart(w, pool, todo, f"died ({death(w.process.exitcode)})")
                                break
                            yield from self._replace(w, pool, todo, ctx, "decoder_crashed")
                            break
                        w.silent = 0.0
                        if isinstance(message, _Ready):
                            w.ready, self._stillborn = True, 0
                        elif isinstance(message, _CannotStart):
                            self._restart(w, pool, todo, message.reason)
                            break
                        elif isinstance(message, _Done):
                            self._give(w, pool, todo)
                        else:
                            yield message
        finally:
            for w in pool:
                w.stop(kill=w.task is not None)

    def _give(self, w: _Worker, pool: list[_Worker], todo: deque[Task]) -> None:
        """Hand ``w`` the next file (or its stop signal); a worker that died while idle is replaced first."""
        task = todo.popleft() if todo else None
        try:
            w.give(task)
        except OSError:  # it died between files (the OOM killer, say): nothing was lost, start another
            w.stop(kill=True)
            pool[pool.index(w)] = fresh = _Worker(w.ctx, self._args)
            self.restarts += 1
            fresh.give(task)

    def _restart(self, w: _Worker, pool: list[_Worker], todo: deque[Task], reason: str) -> None:
        """``w`` ended before it was ready: its file goes back to the front of the queue and a fresh worker takes
        it; the :data:`START_TRIES`-th such worker in a row stops the run (a broken install, not a file)."""
        assert w.task is not None
        todo.appendleft(w.task)
        w.stop(kill=True)
        self._stillborn += 1
        if self._stillborn >= START_TRIES:
            raise DecoderStartError(
                f"the decode worker processes cannot start: {reason} (they are spawned processes that import the "
                "script that started them: a script must keep its work under if __name__ == '__main__'; "
                "--workers 0 decodes in this process)"
            )
        log.debug("a decode worker could not start (%s); starting another", reason)
        pool[pool.index(w)] = fresh = _Worker(w.ctx, self._args)
        self.restarts += 1
        self._give(fresh, pool, todo)

    def _replace(self, w: _Worker, pool: list[_Worker], todo: deque[Task], ctx: Any, code: str) -> Iterator[Message]:
        """Fail ``w``'s file, kill ``w`` and start a fresh worker on the next file."""
        task = w.task
        assert task is not None
        w.stop(kill=True)
        pool[pool.index(w)] = fresh = _Worker(ctx, self._args)
        self.restarts += 1
        self._give(fresh, pool, todo)
        yield _failure(task, code, self.timeout, w.process.exitcode)


def _failure(task: Task, code: str, timeout: float, exitcode: int | None) -> Failed:
    """The error of a file whose decoder was stopped (``decode_timeout``) or died (``decoder_crashed``)."""
    if code == "decode_timeout":
        message = f"decoding made no progress for {timeout:.0f} s; the decoder was stopped"
    else:
        message = f"the decoder process died ({death(exitcode)}) while reading this file"
    log.warning("%s: %s", task.path, message)
    return Failed(task.index, code, message)


class DecodeSession:
    """One supervised decode process kept across files, decoding one file at a time with the pool's limits.

    What a decode actor of the Ray engine holds: a crash inside a Ray task would be retried and then fail the whole
    run, while here, as in :class:`DecodePool`, a decoder that dies, hangs or exceeds its memory fails its file
    (``decoder_crashed``, ``decode_timeout``, ``out_of_memory``) and a fresh process takes the next one.
    """

    def __init__(
        self,
        pre: Preprocess,
        limits: DecodeLimits,
        timeout: float = 60.0,
        memory_bytes: int | None = None,
        decode: DecodeFn = decode_job,
    ) -> None:
        self.timeout = timeout
        self._args = (pre, limits, memory_bytes, decode)
        self._ctx = mp.get_context("spawn")
        self._worker: _Worker | None = None
        self._stillborn = 0  # processes in a row that ended before they were ready

    def decode(self, task: Task) -> Iterator[Message]:
        """The messages of one file, as they come; a stopped or dead decoder ends them with one :class:`Failed`.

        Raises:
            DecoderStartError: :data:`START_TRIES` decode processes in a row ended before they were ready.
        """
        w = self._give(task)
        try:
            while True:
                began = time.monotonic()
                try:
                    ready = w.conn.poll(min(1.0, self.timeout))
                    message = w.conn.recv() if ready else None
                except (EOFError, OSError):
                    if not w.ready:
                        w.process.join(timeout=5)
                        w = self._restart(w, task, f"died ({death(w.process.exitcode)})")
                        continue
                    yield self._lost(w, task, "decoder_crashed")
                    return
                if message is None:
                    w.silent += time.monotonic() - began
                    if w.silent > self.timeout:
                        if not w.ready:
                            w = self._restart(w, task, "no word within the decode timeout")
                            continue
                        yield self._lost(w, task, "decode_timeout")
                        return
                    continue
                w.silent = 0.0
                if isinstance(message, _Ready):
                    w.ready, self._stillborn = True, 0
                elif isinstance(message, _CannotStart):
                    w = self._restart(w, task, message.reason)
                elif isinstance(message, _Done):
                    w.task = None
                    return
                else:
                    yield message
        finally:
            if self._worker is w and w.task is not None:  # left mid-file: its rest must not reach the next file
                w.stop(kill=True)
                self._worker = None

    def _give(self, task: Task) -> _Worker:
        """Hand ``task`` to the decode process, started first if there is none or it died between files."""
        w = self._worker
        try:
            if w is None:
                raise OSError("no decoder yet")
            w.give(task)
        except OSError:  # none yet, or it died between files: nothing was lost, start another
            if w is not None:
                w.stop(kill=True)
            self._worker = w = _Worker(self._ctx, self._args)
            w.give(task)
        return w

    def _restart(self, w: _Worker, task: Task, reason: str) -> _Worker:
        """``w`` ended before it was ready (no file's fault): a fresh process takes ``task``, as in the pool."""
        w.stop(kill=True)
        self._worker = None
        self._stillborn += 1
        if self._stillborn >= START_TRIES:
            raise DecoderStartError(f"the decode worker processes cannot start: {reason}")
        log.warning("a decode worker could not start (%s); starting another", reason)
        return self._give(task)

    def _lost(self, w: _Worker, task: Task, code: str) -> Failed:
        w.stop(kill=True)
        self._worker = None
        return _failure(task, code, self.timeout, w.process.exitcode)

    def close(self) -> None:
        """Stop the decode process."""
        if self._worker is not None:
            self._worker.stop(kill=self._worker.task is not None)
            self._worker = None
