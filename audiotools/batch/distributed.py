"""Scale-out on Ray: shards of the file list, each run by the same batch engine in a Ray task.

``audiotools batch ... --ray [ADDRESS]`` (``pip install 'audiotools[ray]'``). The driver plans the
batch and checks what is done (resume) as usual, then splits the remaining files into shards,
balanced by file size (largest first onto the least loaded shard). Each shard is one Ray task
running :func:`audiotools.batch.engine.process_items` (decode workers, cross-file batches, finishing
steps, atomic outputs) with ``num_gpus=1`` when the recipe's device is CUDA (or ``auto`` on a
cluster with GPUs), else ``num_cpus`` = the recipe's threads (default 1 per shard on a small
machine). A worker process keeps its loaded model between shards. Per-file records come back
to the driver, which merges them into ``batch-report.json``.

Outputs are written by the tasks directly into the output directory, so on a multi-node
cluster it must be a shared filesystem (NFS, a mounted bucket) at the same path on every node,
and so must the inputs. ``ADDRESS`` is passed to ``ray.init`` (``auto``, ``ray://host:10001``);
without one, ``ray.init()`` joins the cluster named by ``RAY_ADDRESS`` or starts a local one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from audiotools.errors import UsageError
from audiotools.pipeline.recipe import Recipe

log = logging.getLogger(__name__)


def _ray():
    try:
        import ray
    except ImportError:
        raise UsageError("--ray needs Ray: pip install 'audiotools[ray]' (or 'ray[default]')") from None
    return ray


def split_shards(items: list, n: int, size: Callable[[object], float]) -> list[list[int]]:
    """Indices of ``items`` in ``n`` shards of about equal total ``size`` (each shard in input order)."""
    n = max(1, min(n, len(items)))
    loads = [0.0] * n
    shards: list[list[int]] = [[] for _ in range(n)]
    for i in sorted(range(len(items)), key=lambda i: (-size(items[i]), i)):
        k = min(range(n), key=lambda k: (loads[k], k))
        shards[k].append(i)
        loads[k] += max(1.0, size(items[i]))
    return [sorted(s) for s in shards if s]


def _file_size(item) -> float:
    try:
        return float(os.path.getsize(item.input))
    except OSError:
        return 0.0


def _run_shard(items: list[dict], recipe: Recipe, options: dict) -> tuple[list[tuple[int, dict]], dict]:
    """One shard, inside a Ray worker: the local batch engine; returns (index, record) pairs and run info."""
    from audiotools.batch.engine import BatchOptions, process_items
    from audiotools.batch.plan import PlanItem

    records: list[tuple[int, dict]] = []
    plan = [PlanItem(**d) for d in items]
    info = process_items(
        plan, recipe, BatchOptions.from_dict(options), lambda i, rec: records.append((i, rec.to_dict()))
    )
    info["node"] = os.uname().nodename
    return records, info


def run_ray(
    items: list, recipe: Recipe, options, on_record: Callable, *, address: str | None = None, shards: int | None = None
) -> dict:
    """Process ``items`` (batch PlanItems) as Ray tasks; ``on_record(i, FileRecord)`` per file."""
    from dataclasses import asdict

    from audiotools.batch.plan import FileRecord

    ray = _ray()
    # files discovery already knows are bad (not audio, a folder, a FIFO ...) fail here, in the driver:
    # no shard spends a task on them, and an interrupted run reports them failed, not pending
    for i, it in enumerate(items):
        if it.error:
            on_record(i, FileRecord(input=it.input, status="failed", error=it.error))
    good = [i for i, it in enumerate(items) if not it.error]  # shard index -> item index
    if not good:
        return {}
    started_here = False
    if not ray.is_initialized():
        kwargs = {"include_dashboard": False, "log_to_driver": log.isEnabledFor(logging.DEBUG)}
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(**kwargs)
        started_here = True
    try:
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        cpus = max(1, int(resources.get("CPU", 1)))
        topts = recipe.options("transcribe")
        device = str(topts.device or "auto")
        use_gpu = device.startswith("cuda") or (device == "auto" and gpus > 0)
        if device.startswith("cuda") and gpus == 0:
            raise UsageError("--device cuda but the Ray cluster has no GPUs")
        if use_gpu:
            slots, task_opts = gpus, {"num_gpus": 1, "num_cpus": 1}
        else:
            threads = int(topts.threads or 1)
            slots, task_opts = max(1, cpus // threads), {"num_cpus": threads}
            recipe = recipe.replace("transcribe", device="cpu", threads=threads)
        n = shards or (2 * slots if len(good) >= 4 * slots else slots)
        groups = [[good[j] for j in g] for g in split_shards([items[i] for i in good], n, _file_size)]
        log.info(
            "ray: %d files in %d shards on %d %s slot(s)", len(good), len(groups), slots, "GPU" if use_gpu else "CPU"
        )
        opts = options.to_dict()
        if not use_gpu and opts.get("workers") is None:
            opts["workers"] = 0 if slots > 1 else 1  # shards already use every core: decode inline
        remote = ray.remote(**task_opts)(_run_shard)
        pending = {}
        for g in groups:
            ref = remote.remote([asdict(items[i]) for i in g], recipe, opts)
            pending[ref] = g
        infos = []
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                g = pending.pop(ref)
                try:
                    records, info = ray.get(ref)
                except Exception as e:  # the whole shard died (node lost, OOM): its files failed
                    from audiotools.batch.prefetch import error_line

                    msg = f"ray shard failed: {error_line(e)}"
                    for i in g:
                        on_record(i, FileRecord(input=items[i].input, status="failed", error=msg))
                    continue
                infos.append(info)
                for j, rec in records:
                    on_record(g[j], FileRecord.from_dict(rec))
        info = {
            "ray": {
                "address": address or os.environ.get("RAY_ADDRESS") or "local",
                "shards": len(groups),
                "slots": slots,
                "gpu": use_gpu,
                "nodes": sorted({i.get("node") for i in infos}),
            }
        }
        info["workers"] = opts.get("workers")  # decode workers per shard (None: each shard's default)
        if infos:
            keys = ("device", "workers", "finish_threads", "batch_size", "model")
            info.update({k: infos[0][k] for k in keys if k in infos[0]})
        return info
    finally:
        if started_here:
            ray.shutdown()
