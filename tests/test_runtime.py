"""The process and its devices: OpenMP waiting (brief spinning on an idle machine, passive on a busy one, the user's choice first), device and precision."""

from __future__ import annotations

from pathlib import Path

import pytest

from linkbert.runtime import SPIN_COUNT, _other_running, configure_waiting, describe_waiting as describe


def test_idle_machine_spins_briefly():
    environ = {}
    why = configure_waiting(environ, other_running=lambda: 0)
    assert environ == {"GOMP_SPINCOUNT": str(SPIN_COUNT)}
    assert "no other task" in why and describe(environ) in why


@pytest.mark.parametrize("others", [1, 3, None])
def test_busy_or_unknown_machine_waits_passively(others):
    environ = {}
    why = configure_waiting(environ, other_running=lambda: others)
    assert environ == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert ("cannot see" in why) if others is None else (f"{others} other" in why)


@pytest.mark.parametrize("given", [{"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "0"}])
def test_the_users_setting_wins(given):
    environ = dict(given)

    def never():
        raise AssertionError("the machine need not be looked at")

    assert "set in the environment" in configure_waiting(environ, other_running=never)
    assert environ == given


@pytest.mark.skipif(not Path("/proc/loadavg").is_file(), reason="no /proc/loadavg (not Linux)")
def test_run_queue_is_read():
    assert _other_running() >= 0


# -- device and precision --------------------------------------------------------------------------

def test_precision_auto_on_cpu_follows_the_cpus_bf16(monkeypatch):
    import torch

    from linkbert import runtime

    cpu = torch.device("cpu")
    for fast, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(runtime, "cpu_has_fast_bf16", lambda fast=fast: fast)
        assert runtime.resolve_precision("auto", cpu) == expected
    assert runtime.autocast_dtype("bf16", cpu) == torch.bfloat16 and runtime.autocast_dtype("fp32", cpu) is None
    assert runtime.grad_scaler(torch.bfloat16, cpu) is None


@pytest.mark.parametrize("precision, message", [("fp16", "needs a CUDA device"), ("fp8", "precision must be one of")])
def test_impossible_precisions_are_config_errors(precision, message):
    import torch

    from linkbert.errors import ConfigError
    from linkbert.runtime import resolve_precision

    with pytest.raises(ConfigError, match=message):
        resolve_precision(precision, torch.device("cpu"))


def test_device_names(monkeypatch):
    import torch

    from linkbert.errors import ConfigError
    from linkbert.runtime import pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto") == torch.device("cpu")
    with pytest.raises(ConfigError, match="no CUDA device"):
        pick_device("cuda:0")
    with pytest.raises(ConfigError, match="device must be"):
        pick_device("tpu-ish")


def test_unwrap_takes_off_compile_and_ddp_wrappers():
    import torch

    from linkbert.runtime import unwrap

    inner = torch.nn.Linear(2, 2)
    ddp_like = type("DDP", (), {"module": inner})()
    compiled_like = type("Compiled", (), {"_orig_mod": ddp_like})()
    assert unwrap(compiled_like) is inner and unwrap(inner) is inner


def test_a_collective_refuses_a_tensor_off_the_process_groups_device():
    """NCCL has no CPU backend: a statistic left on the host would crash the first GPU step.
    Gloo accepts it, so the check is ours, before the collective (a group on "meta" stands in
    for a GPU's here)."""
    import torch

    from linkbert.runtime import Dist, all_reduce_sum

    on_gpu = Dist(rank=0, world=2, device=torch.device("meta"))
    with pytest.raises(RuntimeError, match="a tensor on cpu handed to a collective of a process group on meta"):
        all_reduce_sum(torch.zeros(3), on_gpu)
    single = Dist()
    assert all_reduce_sum(torch.ones(2), single).tolist() == [1.0, 1.0]


def test_one_process_needs_no_collective():
    from linkbert.runtime import Dist, all_gather_objects, any_rank, fail_together

    single = Dist()
    assert (any_rank(True, single), any_rank(False, single)) == (True, False)
    assert all_gather_objects({"a": 1}, single) == [{"a": 1}]
    fail_together(None, single)
    with pytest.raises(OSError, match="full"):
        fail_together(OSError(28, "full"), single)


def test_every_collective_goes_through_runtime():
    """runtime.py's helpers check the device of what they are handed; a torch.distributed call
    anywhere else would bypass that check."""
    import re

    root = Path(__file__).resolve().parents[1] / "src" / "linkbert"
    calls = re.compile(r"torch\.distributed\.(all_reduce|all_gather\w*|broadcast\w*|reduce\w*|barrier|gather|scatter|"
                       r"send|recv|destroy_process_group|init_process_group)\b")
    outside = [f"{path.relative_to(root)}:{n}" for path in root.rglob("*.py") if path.name != "runtime.py"
               for n, line in enumerate(path.read_text().splitlines(), start=1) if calls.search(line)]
    assert outside == []


def test_a_rank_of_several_ends_without_python_teardown(monkeypatch):
    """Under torchrun a rank leaves through os._exit (freeing a gloo group can deadlock on the
    GIL); a single process returns and lets Python end normally."""
    import logging

    from linkbert import runtime

    ended = []
    monkeypatch.setattr(runtime.os, "_exit", ended.append)
    monkeypatch.setattr(logging, "shutdown", lambda: None)  # pytest's own log handlers stay open
    monkeypatch.setenv("WORLD_SIZE", "1")
    runtime.end_process(0)
    assert ended == []
    monkeypatch.setenv("WORLD_SIZE", "2")
    runtime.end_process(3)
    assert ended == [3]


# -- distributed: a group on one process, devices, DDP, failing together ---------------------------

def test_a_group_on_one_process_runs_every_collective():
    """``distributed=always``: a real (gloo) process group on one process, without torchrun's
    environment; collectives run through it; DDP wraps without buffer broadcasts and with
    gradients as views of its buckets."""
    import torch

    from linkbert import runtime

    dist = runtime.setup_distributed("always", timeout_minutes=1)
    try:
        assert dist.group and dist.backend == "gloo" and torch.distributed.is_initialized()
        assert runtime.all_reduce_sum(torch.ones(2, dtype=torch.float64), dist).tolist() == [1.0, 1.0]
        assert runtime.all_gather_objects("x", dist) == ["x"] and runtime.any_rank(True, dist)
        model = torch.nn.Linear(3, 2)
        model.register_buffer("constant", torch.arange(3.0))
        wrapped = runtime.data_parallel(model, dist)
        assert wrapped.gradient_as_bucket_view and not wrapped.will_sync_module_buffers()
        wrapped(torch.ones(4, 3)).sum().backward()
        assert model.weight.grad is not None
    finally:
        runtime.shutdown(dist)
    assert not torch.distributed.is_initialized()
    assert not runtime.setup_distributed("auto").group  # one process: no group, collectives return at once
    with pytest.raises(Exception, match="distributed must be one of auto, always"):
        runtime.setup_distributed("never")


@pytest.mark.parametrize("devices, visible, local_rank, local_world, expected", [
    (4, None, 2, 4, "cuda:2"),
    (1, "3", 5, 8, "cuda:0"),  # a launcher gave each rank its own device: LOCAL_RANK % 1
    (4, "0,1,2,3", 1, 8, "8 processes on this node (LOCAL_RANK 1) but 4 visible CUDA devices"),
    (2, None, 2, 1, "3 processes on this node (LOCAL_RANK 2) but 2 visible CUDA devices"),
    (1, None, 1, 2, "2 processes on this node (LOCAL_RANK 1) but 1 visible CUDA device "),
])
def test_local_rank_is_mapped_onto_the_visible_devices(monkeypatch, devices, visible, local_rank, local_world,
                                                       expected):
    import torch

    from linkbert import runtime
    from linkbert.errors import ConfigError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: devices)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    if expected.startswith("cuda"):
        assert runtime.rank_device(local_rank, local_world) == torch.device(expected)
        return
    with pytest.raises(ConfigError, match="ranks cannot share a GPU") as refused:
        runtime.rank_device(local_rank, local_world)
    assert expected in str(refused.value) and "\n" not in str(refused.value)


def test_a_failure_is_described_as_the_command_line_prints_it():
    import errno

    from linkbert.errors import ConfigError
    from linkbert.runtime import describe_failure

    full = OSError(errno.ENOSPC, "No space left on device", "/run/checkpoints/x/trainer.pt")
    assert describe_failure(full) == ("/run/checkpoints/x/trainer.pt: No space left on device; free some space or "
                                      "write elsewhere")
    assert describe_failure(ConfigError("lr must be above 0")) == "lr must be above 0"
    assert describe_failure(ZeroDivisionError("division by zero\nmore")) == "ZeroDivisionError: division by zero"


def _rank_of_two(rank: int, store: str, results: str) -> None:
    """One of two gloo ranks: rank 0 fails inside ``together`` (a full disk), rank 1 does not."""
    import errno
    import json

    import torch

    from linkbert import runtime

    torch.distributed.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    dist = runtime.Dist(rank=rank, world=2, backend="gloo")
    outcome = "nothing raised"
    try:
        with runtime.together(dist):
            if rank == 0:
                raise OSError(errno.ENOSPC, "No space left on device", "/out/trainer.pt")
    except Exception as error:  # noqa: BLE001 -- what each rank raised is the result
        outcome = f"{type(error).__name__}: {runtime.describe_failure(error)}"
    with open(f"{results}.{rank}", "w") as f:
        json.dump(outcome, f)
    runtime.shutdown(dist)


@pytest.mark.slow
def test_a_failure_on_one_rank_raises_on_every_rank_with_its_message(tmp_path):
    """Where a barrier would leave rank 1 waiting for a rank 0 that will never come, ``together``
    tells it at once: both raise, with rank 0's one-line message."""
    import json

    import torch.multiprocessing

    torch.multiprocessing.spawn(_rank_of_two, args=(str(tmp_path / "store"), str(tmp_path / "result")), nprocs=2)
    outcomes = [json.loads((tmp_path / f"result.{rank}").read_text()) for rank in (0, 1)]
    message = "/out/trainer.pt: No space left on device; free some space or write elsewhere"
    assert outcomes == [f"OSError: {message}", f"RankFailed: {message}"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.compile's own imports
def test_the_compile_cache_is_set_before_torch_compile_sets_its_own(tmp_path, monkeypatch):
    import os

    import torch

    from linkbert.runtime import set_compile_cache

    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    set_compile_cache(tmp_path / "cache")
    torch.compile(torch.nn.Linear(2, 2))  # sets TORCHINDUCTOR_CACHE_DIR to its default where unset
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "cache")
    set_compile_cache(None)
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "cache")
