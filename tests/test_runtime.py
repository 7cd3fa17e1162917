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
