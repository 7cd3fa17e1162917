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
