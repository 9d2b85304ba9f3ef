"""Which signal interrupts training, which is only noted, and the exit code each asks for."""

import inspect
import os
import signal
import sys
import time

import pytest

from fcnn_cli import signals, train
from fcnn_cli.signals import Interrupted, Interrupts


@pytest.fixture
def handlers():
    """The test process's own handlers, put back whatever a test leaves."""
    previous = {s: signal.getsignal(s) for s in signals.EXIT_CODES}
    yield
    for s, handler in previous.items():
        signal.signal(s, handler)


def test_before_an_epoch_ends_the_first_signal_interrupts_and_later_ones_are_noted():
    interrupts = Interrupts()
    with pytest.raises(Interrupted) as e:
        interrupts._on_signal(signal.SIGTERM, sys._getframe())
    assert isinstance(e.value, KeyboardInterrupt) and e.value.code == 143
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGTERM):
        assert interrupts._on_signal(s, sys._getframe()) is None
    assert interrupts.code == 143  # the first signal decides


def test_after_an_epoch_a_signal_outside_training_is_only_noted():
    interrupts = Interrupts()
    interrupts.epoch_ended()
    assert interrupts._on_signal(signal.SIGINT, sys._getframe()) is None
    assert interrupts.code == 130


def test_while_held_every_signal_is_only_noted():
    interrupts = Interrupts()
    interrupts.hold()
    assert interrupts._on_signal(signal.SIGINT, sys._getframe()) is None
    assert interrupts._on_signal(signal.SIGTERM, sys._getframe()) is None
    assert interrupts.code == 130


def test_the_training_loop_is_guarded_and_the_assembly_of_its_result_is_not():
    source, first = inspect.getsourcelines(train.fit)
    line = {text.strip(): first + i for i, text in enumerate(source)}
    guarded = signals._guarded_lines(train.__file__)
    assert line["last_complete = snapshot()"] in guarded  # inside the loop
    assert line["loss.backward()"] in guarded
    assert line["model.load_state_dict(best_state)"] not in guarded  # after it
    assert not signals._guarded_lines(signals.__file__)


def test_a_real_signal_raises_and_the_handlers_are_put_back(handlers):
    before = signal.getsignal(signal.SIGTERM)
    with Interrupts() as interrupts:
        assert signal.getsignal(signal.SIGTERM) == interrupts._on_signal
    assert signal.getsignal(signal.SIGTERM) == before
    with pytest.raises(Interrupted), Interrupts():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)  # cut short by the handler's exception
    # A process that took a signal is on its way out: one more must not kill it half-way.
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
