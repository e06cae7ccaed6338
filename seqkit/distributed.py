"""Data-parallel training through torch.distributed: which process am I, and what the processes share.

torchrun (or any launcher) describes each process in its environment: ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``. With ``WORLD_SIZE`` above 1, ``process_group``
joins the processes: gloo for tensors on the CPU and, where CUDA is present, nccl for tensors on
the GPUs (each process on ``cuda:LOCAL_RANK``), with a timeout so that a dead or hung peer ends
the run instead of hanging it. A single process is rank 0 of 1 and every helper here is then a
no-op, so the trainer and the tasks have one code path for both.

Only rank 0 writes files and draws progress (``is_main``). Anything that decides what every
process does next (which checkpoint to resume, whether to stop) is decided together: by rank 0
for all (``decided_by_main``) or by a reduction every rank takes part in.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from datetime import timedelta
from typing import TypeVar

import torch
from torch import distributed as dist

from seqkit.errors import SeqkitError, SeqkitWarning

T = TypeVar("T")


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def restart_count() -> int:
    """How many times torchrun has restarted this job's processes (``--max-restarts``); 0 at first."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))


def active() -> bool:
    """Is this process one of several joined in a process group?"""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def placement() -> tuple[int, int]:
    """(this process's rank, the number of processes) in the process group; (0, 1) alone."""
    return (dist.get_rank(), dist.get_world_size()) if active() else (0, 1)


DEFAULT_TIMEOUT = 300.0  # seconds: longer than any step or checkpoint of a seqkit model takes


def timeout() -> float:
    """``SEQKIT_DDP_TIMEOUT`` seconds, the longest wait for a peer (default 300)."""
    text = os.environ.get("SEQKIT_DDP_TIMEOUT", "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > 0 or seconds == float("inf"):
        raise SeqkitError(f"SEQKIT_DDP_TIMEOUT: expected a number of seconds above 0, got {text!r}")
    return seconds


# torchrun's rendezvous hands its workers one store for every attempt (unless told otherwise),
# and the processes of a restarted job may read their peers' addresses of the attempt before,
# then fail to connect (seen with torch 2.13 and gloo; pytorch/pytorch#135712).
SHARED_STORE_ADVICE = ("torchrun restarts (--max-restarts) reuse one store across attempts, where "
                       "restarted processes may find their peers' old addresses and fail to join; "
                       "start torchrun with TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1")


def _restarts_share_a_store() -> bool:
    return (int(os.environ.get("TORCHELASTIC_MAX_RESTARTS", "0")) > 0
            and os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True")


@contextmanager
def process_group():
    """Join the other processes for the duration of the block, when there are any.

    ``timeout()`` bounds every wait for a peer: a collective that does not complete in time
    raises, so a run whose peer died or hangs ends. The group holds gloo for CPU tensors and,
    where CUDA is present, nccl for CUDA tensors (started on first use, so a CPU run on a GPU
    machine never touches it).
    """
    if world_size() == 1 or active():
        yield
        return
    seconds = timeout()
    if not dist.is_available():
        raise SeqkitError(f"WORLD_SIZE={world_size()}: this torch build has no torch.distributed; "
                          f"run one process, or install a torch with distributed support")
    backend = "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank() % torch.cuda.device_count())
        backend = "cpu:gloo,cuda:nccl"
    if is_main() and restart_count() == 0 and _restarts_share_a_store():
        warnings.warn(SHARED_STORE_ADVICE, SeqkitWarning)
    try:
        dist.init_process_group(backend, timeout=timedelta(seconds=seconds))
    except (RuntimeError, ValueError) as exc:
        advice = f"; {SHARED_STORE_ADVICE}" if restart_count() and _restarts_share_a_store() else ""
        raise SeqkitError(f"torch.distributed: cannot join the other {world_size() - 1} process(es) "
                          f"(RANK={rank()}, MASTER_ADDR={os.environ.get('MASTER_ADDR')}, "
                          f"MASTER_PORT={os.environ.get('MASTER_PORT')}): {_first_line(exc)}{advice}") from None
    try:
        yield
    except RuntimeError as exc:  # the trainer says more where it can (the step, the checkpoint)
        if not is_peer_failure(exc):
            raise
        raise SeqkitError(f"rank {rank()} of {world_size()}: another process died or stopped "
                          f"answering ({peer_failure_summary(exc)})") from None
    finally:
        dist.destroy_process_group()


def device_for_rank(device: torch.device) -> torch.device:
    """The device this process trains on: ``device`` itself, or with several processes on CUDA,
    ``cuda:LOCAL_RANK`` (one GPU per process, as nccl requires)."""
    if not active() or device.type != "cuda":
        return device
    if device.index is not None and device.index != local_rank():
        raise SeqkitError(f"device: 'cuda:{device.index}': with several processes each uses "
                          f"cuda:LOCAL_RANK; use device: auto or cuda")
    if local_rank() >= torch.cuda.device_count():
        raise SeqkitError(f"device: LOCAL_RANK={local_rank()} but this machine has "
                          f"{torch.cuda.device_count()} CUDA device(s); start at most that many "
                          f"processes per machine (torchrun --nproc-per-node)")
    return torch.device("cuda", local_rank())


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` summed over every process, in place (returned for convenience).

    For a task's evaluation: each rank sums its share of a split (loss × tokens, tokens, error
    counts), then every rank holds the sums of the whole split, and so the metrics of one process
    that scored it all.
    """
    if active():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_max(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` maximised over every process, in place: a flag any rank raised, raised on all."""
    if active():
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor


def broadcast_from_main(tensor: torch.Tensor) -> torch.Tensor:
    """Rank 0's ``tensor`` on every process, in place: a number rank 0 measured (its clock)."""
    if active():
        dist.broadcast(tensor, src=0)
    return tensor


def decided_by_main(decide: Callable[[], T]) -> T:
    """``decide()`` run on rank 0 alone and its result handed to every rank, or the
    ``SeqkitError`` it raised raised on every rank: a choice (which checkpoint, whether a folder
    holds a run) that must be the same everywhere, made where the run directory is."""
    if not active():
        return decide()
    message: list = [None]
    if is_main():
        try:
            message = [("ok", decide())]
        except SeqkitError as exc:
            message = [("error", exc.problems)]
    dist.broadcast_object_list(message, src=0)
    kind, value = message[0]
    if kind == "error":
        raise SeqkitError(*value)
    return value


def gather_to_main(obj: T) -> list[T] | None:
    """Every rank's ``obj`` (plain data and tensors, which arrive on the CPU), in rank order, on
    rank 0; None elsewhere."""
    if not active():
        return [obj]
    gathered = [None] * dist.get_world_size() if is_main() else None
    dist.gather_object(_on_cpu(obj), gathered, dst=0)
    return gathered


def _on_cpu(obj):
    """``obj`` with every tensor in it (in dicts, lists, tuples) moved to the CPU: a CUDA tensor
    would be unpickled on rank 0 onto the sender's GPU."""
    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {key: _on_cpu(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_on_cpu(value) for value in obj)
    return obj


def gather_to_all(obj: T) -> list[T]:
    """Every rank's ``obj`` (plain data), in rank order, on every rank: for what does not add up
    across ranks, such as the outputs a corpus-level score (BLEU) reads all at once."""
    if not active():
        return [obj]
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def is_peer_failure(exc: BaseException) -> bool:
    """Did ``exc`` come from a collective whose peer died, hung past the timeout or lost its
    connection? gloo raises a plain RuntimeError naming its own source files; nccl a DistError."""
    if not isinstance(exc, RuntimeError) or not active():
        return False
    text = str(exc)
    return isinstance(exc, getattr(dist, "DistError", ())) or "gloo" in text or "NCCL" in text


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def peer_failure_summary(exc: BaseException) -> str:
    """The gist of a failed collective, for a one-line message: gloo's text without its source path."""
    line = _first_line(exc)
    if line.startswith("[") and "] " in line:
        line = line.split("] ", 1)[1]
    return line.split(". This is typically")[0]
