"""Scaffolding that many test files share: an exact-message `raises`, the exercise feedback runner, one CPU thread,
the hypothesis profiles.

The session-wide settings (quick notebooks, OMP_NUM_THREADS) live in the repository's root conftest.py.
"""
import os
from contextlib import contextmanager

import pytest
import torch

from linformer_edu import _state

# Property tests (tests/test_properties.py). "ci": bounded and derandomized, so every run and machine draws the same
# examples; "long": many random examples for a local hunt (HYPOTHESIS_PROFILE=long).
try:   # .venv-colab runs the explorer's tests with Colab's packages only, without the dev tools
    from hypothesis import HealthCheck, settings
except ImportError:
    settings = None
if settings is not None:
    settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True, database=None,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile("long", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@contextmanager
def _raises_exactly(exc_type, message):
    with pytest.raises(exc_type) as info:
        yield info
    assert type(info.value) is exc_type, f"raised {type(info.value).__name__}, expected {exc_type.__name__}"
    assert str(info.value) == message


@pytest.fixture
def raises_exactly():
    """`with raises_exactly(ValueError, "the whole message"):` — the type itself (not a subclass) and every
    character of the message, where `pytest.raises(match=...)` would accept any message containing a fragment."""
    return _raises_exactly


@pytest.fixture
def feedback(capsys):
    """`ok, line = feedback(check, answer)`: run an exercise checker on an answer; what it returned and what it
    printed (one line, stripped)."""
    def run(check, answer):
        capsys.readouterr()   # drop anything printed before, so `line` is the checker's alone
        ok = check(answer)
        return ok, capsys.readouterr().out.strip()
    return run


@pytest.fixture
def one_thread():
    """Run on one CPU thread, then put the previous count back: many tiny ops gain nothing from more threads."""
    with _state.one_thread():
        yield
