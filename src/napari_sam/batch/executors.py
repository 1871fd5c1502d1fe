"""Batch labeling, the executors: where the tasks of :func:`napari_sam.batch.run.run_batch` run.

:class:`LocalExecutor` runs them on local threads, :class:`DaskExecutor` on a ``dask.distributed``
client (a ``LocalCluster`` or a remote scheduler); both offer ``submit``, ``submit_after`` (a task fed
the results of others), ``wait_first``, ``close`` and ``slots`` (how many tasks run at once, which
bounds how many files the driver keeps in flight). :mod:`napari_sam.batch.run` re-exports the public
names here.
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor
from concurrent.futures import wait as cf_wait


class LocalExecutor:
    """Tasks on local threads (the default: one thread, the model itself using every core).

    Writers (``submit_after``) run on a thread of their own, so a finished file is written while the
    next file's planes are labelled instead of queueing behind them.
    """

    def __init__(self, threads: int = 1) -> None:
        self.slots = max(1, threads)
        self.pool = ThreadPoolExecutor(max_workers=self.slots, thread_name_prefix="napari-sam")
        self.writers = ThreadPoolExecutor(max_workers=1, thread_name_prefix="napari-sam-writer")

    def submit(self, fn, *args, priority: int = 0):
        return self.pool.submit(fn, *args)

    def submit_after(self, fn, deps, *args, priority: int = 0):
        return self.writers.submit(fn, *args, *[d.result() for d in deps])

    @staticmethod
    def wait_first(pending):
        done, _ = cf_wait(pending, return_when=FIRST_COMPLETED)
        return done

    @staticmethod
    def cancel(futures) -> None:
        for fut in futures:
            fut.cancel()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.writers.shutdown(wait=True)


class DaskExecutor:
    """Tasks on a ``dask.distributed`` client (a LocalCluster or a remote scheduler)."""

    def __init__(self, client, owns: tuple = ()) -> None:
        self.client = client
        self._owns = owns

    @classmethod
    def local_cluster(cls, workers: int, threads_per_worker: int = 1) -> DaskExecutor:
        from distributed import Client, LocalCluster

        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=threads_per_worker, processes=True, dashboard_address=None
        )
        client = Client(cluster)
        return cls(client, (client, cluster))

    @classmethod
    def connect(cls, address: str) -> DaskExecutor:
        from distributed import Client

        client = Client(address)
        return cls(client, (client,))

    @property
    def slots(self) -> int:
        """Threads of the cluster's workers (at least 1)."""
        try:
            return max(1, sum(self.client.nthreads().values()))
        except Exception:  # a scheduler that does not answer yet
            return 1

    def submit(self, fn, *args, priority: int = 0):
        return self.client.submit(fn, *args, pure=False, priority=priority)

    def submit_after(self, fn, deps, *args, priority: int = 0):
        return self.client.submit(fn, *args, *deps, pure=False, priority=priority)

    @staticmethod
    def wait_first(pending):
        from distributed import wait

        return wait(list(pending), return_when="FIRST_COMPLETED").done

    def cancel(self, futures) -> None:
        self.client.cancel(list(futures))

    def close(self) -> None:
        for obj in self._owns:
            obj.close()


def make_executor(workers: int | None = None, scheduler: str | None = None, threads: int = 1):
    """Local threads by default; ``workers`` starts a LocalCluster; ``scheduler`` joins a cluster."""
    if scheduler:
        return DaskExecutor.connect(scheduler)
    if workers:
        return DaskExecutor.local_cluster(workers)
    return LocalExecutor(threads)
