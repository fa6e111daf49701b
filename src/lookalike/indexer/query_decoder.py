"""Decoding query files (uploads to the HTTP service) in worker processes, as the indexer decodes its files.

A long-lived service cannot decode untrusted uploads in its own process: one decoder crash would end it. Queries
go to a small pool of spawned processes (pebble's ``ProcessPool``: one result per task, a worker that dies or runs
past the timeout is replaced and only that task fails), capped in memory like the indexer's decode workers. Each
query comes back as the same messages the indexer's workers send (preprocessed pixels, never PIL objects).
"""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

from pebble import ProcessExpired, ProcessPool

from lookalike.indexer.decode_pool import DecodeFn, death, prepare_decoder_process
from lookalike.indexer.file_decoding import DecodeLimits, Failed, Message, Task, decode_job
from lookalike.indexer.preprocess import Preprocess
from lookalike.types import MediaKind


def _decode_all(decode: DecodeFn, task: Task, pre: Preprocess, limits: DecodeLimits) -> list[Message]:
    return list(decode(task, pre, limits))


class QueryDecoder:
    """Decode query files in ``workers`` supervised processes; thread-safe.

    Args:
        workers: worker processes (started now, so the first query does not wait for one).
        timeout: seconds one query may take to decode before its worker is killed (``decode_timeout``).
        memory_bytes: address-space limit per worker (None: unlimited).
        decode: the per-file decode function (module-level, so spawned workers can import it).
    """

    def __init__(
        self,
        workers: int = 2,
        timeout: float = 60.0,
        memory_bytes: int | None = None,
        decode: DecodeFn = decode_job,
    ) -> None:
        self.timeout = timeout
        self.decode_fn = decode
        self.pool = ProcessPool(
            max_workers=workers,
            context=mp.get_context("spawn"),
            initializer=prepare_decoder_process,
            initargs=(memory_bytes,),
        )

    def decode(self, path: Path, kind: MediaKind, pre: Preprocess, limits: DecodeLimits) -> list[Message]:
        """The messages decoding ``path`` gives; a crash or a timeout is one :class:`Failed` message."""
        future = self.pool.schedule(
            _decode_all, args=(self.decode_fn, Task(0, path, kind), pre, limits), timeout=self.timeout
        )
        try:
            messages: list[Message] = future.result()
        except ProcessExpired as e:
            message = f"the decoder process died ({death(e.exitcode)}) reading this file"
            return [Failed(0, "decoder_crashed", message)]
        except FutureTimeout:
            message = f"decoding took longer than {self.timeout:g} s; the decoder was stopped"
            return [Failed(0, "decode_timeout", message)]
        return messages

    def close(self) -> None:
        """Stop the workers."""
        self.pool.stop()
        self.pool.join(timeout=10)
