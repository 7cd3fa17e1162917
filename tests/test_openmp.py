"""How OpenMP threads wait: brief spinning on an idle machine, passive on a busy one, the user's choice first."""

from __future__ import annotations

from pathlib import Path

import pytest

from linkbert.openmp import SPIN_COUNT, _other_running, configure_waiting, describe


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
