"""Registries too large for memory: a study as partitioned Parquet, analysed partition by partition on Dask.

Every analysis of a registry reduces to sums computed per partition and merged: per-day counts of
entries, events and censorings for Kaplan-Meier and the claim test, per-group cross-products for
the mixed model, per-class sufficient statistics for the trajectory classes, counts and means for
the report. A partition is an ordinary in-memory :class:`~backpain_outcomes.study.Study` of whole
patients (so of whole episodes, see :mod:`backpain_outcomes.registry_store`); the public analyses
accept a :class:`PartitionedStudy` wherever they accept a Study and return the same result types.

The protocol (:class:`Partitions`) the registry analyses rely on:

* ``n_partitions``;
* ``map(fn, *args)``: ``fn(partition, *args)`` on every partition, results in partition order;
* ``reduce(fn, combine, *args)``: the same, folded with ``combine`` in partition order as results arrive;
* ``hold(fn, *args)``: the results kept where they were computed, for later maps over them (EM);
* the loading bookkeeping, merged over partitions: ``flow()``, ``exclusions``, ``blanked_values``,
  ``same_day_scores``, ``notes``, ``rows_read``, ``sources``, ``instruments``, ``onset_known``.

:class:`PartitionedStudy` runs the partitions on a ``distributed.Client`` (a local cluster of two
single-threaded worker processes by default); :class:`SequentialPartitions` runs in-memory studies
one after the other, without Dask, for tests and small data.
"""

from __future__ import annotations

import inspect
import itertools
import re
import weakref
from pathlib import Path
from typing import Any

import pandas as pd

from . import registry_models, registry_report, registry_survival  # noqa: F401 - register the analyses of partitioned studies
from .checks import check_bool
from .exceptions import DataValidationError, ExcludedRowsWarning, MissingDependencyError, warn
from .loading import load_study
from .reading import TABLES
from .registry_partitions import HeldStates, Partitions, SequentialPartitions, partition_bookkeeping
from .registry_store import (
    partition_parts,
    read_registry,
    registry_dayfirst,
    registry_rows,
    simulate_partitioned,
    write_partitioned,
)

try:  # optional dependency: the ``registry`` extra
    import distributed
except ImportError:  # pragma: no cover - the registry extra is installed with the test extra
    distributed = None  # type: ignore[assignment]

__all__ = ["Partitions", "PartitionedStudy", "SequentialPartitions", "load_partitioned", "write_partitioned",
           "simulate_partitioned", "partition_bookkeeping", "PERSIST_ROWS"]

#: Tasks a worker thread may have submitted at once in :meth:`PartitionedStudy.reduce` (finished results wait on
#: the workers until the driver takes them).
IN_FLIGHT = 2

#: Registries with at most this many score rows keep their partitions in the workers' memory between analyses.
PERSIST_ROWS = 2_000_000


# ------------------------------------------------------------------------------------------------ Dask
def _load(directory, meta, k, options) -> dict:
    """Load partition ``k``: its Study and bookkeeping, or its problems.

    A partition's ``ExcludedRowsWarning`` is raised where it is loaded (a worker's log); the registry
    raises one for all partitions when it is loaded.
    """
    parts: dict[str, Any] = {t: partition_parts(directory, meta, k).get(t) for t in TABLES}
    try:
        study = load_study(**parts, **options)
    except DataValidationError as err:
        return {"study": None, "problems": err.problems, "header": err.header}
    return {"study": study, "book": partition_bookkeeping(study)}


def _load_bookkeeping(directory, meta, k, options) -> dict:
    """:func:`_load` without keeping the Study (registries read again for each analysis)."""
    return _without_study(_load(directory, meta, k, options))


def _without_study(loaded: dict) -> dict:
    return {k: v for k, v in loaded.items() if k != "study"}


def _apply(loaded: dict, fn, *args):
    return fn(loaded["study"], *args)


def _load_apply(directory, meta, k, options, fn, *args):
    """Load partition ``k`` again (its warnings were shown when the registry was loaded) and apply ``fn``."""
    parts: dict[str, Any] = dict(partition_parts(directory, meta, k))
    study = load_study(**parts, **options)
    return fn(study, *args)


def _results_in_order(futures: list) -> list:
    """The futures' results in their order, each taken (and its future released) as soon as it is done: a
    worker holds only its results not yet taken, not every partition's until the last one ends."""
    index = {f.key: k for k, f in enumerate(futures)}
    out: list = [None] * len(futures)
    running = distributed.as_completed(futures)
    futures.clear()
    for fut in running:
        out[index[fut.key]] = fut.result()
        fut.release()
    return out


def _shutdown(client, cluster) -> None:
    if client is not None:
        client.close()
    if cluster is not None:
        cluster.close()


class HeldFutures(HeldStates):
    """Per-partition states held by the Dask workers that computed them (:meth:`PartitionedStudy.hold`):
    each map runs where its state is and returns only the results."""

    def __init__(self, client, futures: list):
        super().__init__(futures)
        self.client = client

    def map(self, fn, *args, each=None) -> list:
        per = [()] * len(self.states) if each is None else [(e,) for e in each]
        return _results_in_order([self.client.submit(fn, f, *e, *args, pure=False)
                                  for f, e in zip(self.states, per, strict=True)])

    def release(self) -> None:
        for f in self.states:
            f.release()
        self.states = []


class PartitionedStudy(Partitions):
    """A registry on disk (:func:`load_partitioned`), its partitions loaded and analysed on Dask workers.

    Use it as a context manager, or call :meth:`close`, to stop the local cluster it started.

    Attributes
    ----------
    directory : Path
    n_partitions : int
    persist : bool
        Whether the loaded partitions stay in the workers' memory between analyses (else each
        analysis loads them again from the Parquet files).
    client : distributed.Client
    """

    def __init__(self, directory, meta, options, client, persist):
        self.directory, self._meta, self._options = Path(directory), meta, dict(options)
        self.n_partitions = int(meta["n_partitions"])
        self._cluster = None
        if client is None:
            self._cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
            client = distributed.Client(self._cluster)
        self.client = client
        self._finalizer = weakref.finalize(self, _shutdown, client if self._cluster else None, self._cluster)
        self._closed = False
        n_scores = registry_rows(self.directory, meta, "scores")
        self.persist = n_scores <= PERSIST_ROWS if persist is None else check_bool(persist, "persist")
        # held: each partition's Study stays on its worker; else each worker keeps only the bookkeeping
        load = _load if self.persist else _load_bookkeeping
        futures = [client.submit(load, str(self.directory), meta, k, self._options, pure=False)
                   for k in range(self.n_partitions)]
        loaded = client.gather([client.submit(_without_study, f, pure=False) for f in futures])
        self._futures = futures if self.persist else None
        del futures
        self._raise_problems(loaded)
        super().__init__([d["book"] for d in loaded])
        self._warn()

    def _raise_problems(self, loaded: list[dict]) -> None:
        bad = [d for d in loaded if "problems" in d]
        if not bad:
            return
        order = {s: i for i, s in enumerate(dict.fromkeys(src["source"] for src in self._meta["sources"]))}
        problems = pd.concat([d["problems"].astype({"table": object, "source": object}) for d in bad],
                             ignore_index=True)
        key = pd.DataFrame({"t": problems["table"], "s": problems["source"].map(order),
                            "r": pd.to_numeric(problems["row"], errors="coerce")})
        problems = problems.loc[key.sort_values(["t", "s", "r"], kind="stable").index].reset_index(drop=True)
        headers = [d["header"] for d in bad if d["header"]]
        header = None
        if headers and all(h == "the input cannot be read" for h in headers):
            header = headers[0]
        elif headers:
            n_optional = sum(int(m.group(1)) for h in headers for m in [re.search(r"\((\d+) of them", h)] if m)
            header = (f"{len(problems)} problem(s) found in the input data ({n_optional} of them invalid values in "
                      "optional columns, which errors='exclude' sets blank, keeping their rows)")
        self.close()
        raise DataValidationError(problems, header=header)

    def _warn(self) -> None:
        """One ``ExcludedRowsWarning`` for the rows excluded in all partitions, as loading the whole study gives."""
        ex = self.exclusions
        reasons = ex["reason"].astype(str)
        n_bad = int((~reasons.isin(["duplicate", "blank_row"])).sum())
        if n_bad:
            warn(f"{n_bad} invalid row(s) were excluded (see study.exclusions; "
                          f"reasons: {reasons.value_counts().to_dict()})", ExcludedRowsWarning)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (or the end of the ``with`` block reached), or the Dask client
        stopped: the registry then analyses nothing until it is loaded again."""
        return self._closed or self.client.status in ("closed", "closing")

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError(f"the registry {self.directory} is closed (study.close(), the end of its with block, "
                             f"or its Dask client stopped); load it again with load_partitioned({str(self.directory)!r})"
                             " and run the analysis inside the with block")

    def _submit_one(self, k: int, fn, args):
        if self._futures is not None:
            return self.client.submit(_apply, self._futures[k], fn, *args, pure=False)
        return self.client.submit(_load_apply, str(self.directory), self._meta, k, self._options, fn, *args,
                                  pure=False)

    def _submit(self, fn, args) -> list:
        self._check_open()
        return [self._submit_one(k, fn, args) for k in range(self.n_partitions)]

    def map(self, fn, *args) -> list:
        """``fn(partition, *args)`` on every partition, the results in partition order (each taken as it ends)."""
        return _results_in_order(self._submit(fn, args))

    def reduce(self, fn, combine, *args):
        """Fold the results in partition order as they arrive; only results waiting for an earlier one are held.

        At most :data:`IN_FLIGHT` tasks per worker thread are submitted at a time, and the next partition is
        submitted as each result is taken: when the driver's ``combine`` is slower than the workers, the
        finished results wait on the workers, so without this bound they would pile up there.
        """
        self._check_open()
        window = max(2, IN_FLIGHT * sum(self.client.nthreads().values()))
        todo = iter(range(self.n_partitions))
        first = [self._submit_one(k, fn, args) for k in itertools.islice(todo, window)]
        index = {f.key: i for i, f in enumerate(first)}
        running = distributed.as_completed(first)
        del first
        waiting, total, nxt = {}, None, 0
        for fut in running:
            waiting[index.pop(fut.key)] = fut.result()
            fut.release()
            for k in itertools.islice(todo, 1):
                new = self._submit_one(k, fn, args)
                index[new.key] = k
                running.add(new)
            while nxt in waiting:
                value = waiting.pop(nxt)
                total = value if nxt == 0 else combine(total, value)
                nxt += 1
        return total

    def hold(self, fn, *args) -> HeldFutures:
        """``fn(partition, *args)`` on every partition, its result left on the worker (:class:`HeldFutures`)."""
        futures = self._submit(fn, args)
        distributed.wait(futures)
        return HeldFutures(self.client, futures)

    def close(self) -> None:
        """Release the partitions held by the workers and stop the local cluster started for this registry."""
        self._futures = None
        self._closed = True
        self._finalizer()

    def __enter__(self) -> PartitionedStudy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<PartitionedStudy {self.directory}: {self.n_partitions} partitions>"


def load_partitioned(directory, *, client=None, persist: bool | None = None, **options) -> PartitionedStudy:
    """Load a registry written by :func:`write_partitioned` or :func:`simulate_partitioned`.

    Each partition is checked by :func:`~backpain_outcomes.load_study` on a Dask worker, with the
    rows' original files and lines, so the problems are those of loading the whole study (one
    ``DataValidationError`` listing all of them, or the exclusions of every partition with
    ``errors="exclude"``), and flow counts are the sums over partitions.

    Parameters
    ----------
    directory : str or Path
        The registry directory.
    client : distributed.Client, optional
        Where to run: any Dask cluster. By default a ``LocalCluster`` of two single-threaded worker
        processes is started and stopped by :meth:`PartitionedStudy.close` (or ``with``).
    persist : bool, optional
        Keep the loaded partitions in the workers' memory between analyses (default: when the
        registry has at most :data:`PERSIST_ROWS` score rows); otherwise each analysis reads them again.
    **options
        Options of :func:`~backpain_outcomes.load_study` (``errors``, ``today``, ``no_sessions``, ...).

    Returns
    -------
    PartitionedStudy
    """
    if distributed is None:
        raise MissingDependencyError("registries need dask and distributed: pip install 'backpain_outcomes[registry]'")
    try:
        inspect.signature(load_study).bind(**options)
    except TypeError as err:
        raise TypeError(f"load_partitioned: {err} (options are those of load_study)") from None
    meta = read_registry(directory)
    note = None
    if options.get("dayfirst") is None:
        options["dayfirst"], note = registry_dayfirst(meta)
    study = PartitionedStudy(directory, meta, options, client, persist)
    if note:
        study.notes.append(note)
    return study
