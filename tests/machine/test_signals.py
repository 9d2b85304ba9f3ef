"""Which signal interrupts training, which is only noted, and the exit code each asks for."""

import os
import signal
import sys
import time

import pytest
import torch

from fcnn_cli.machine import signals
from fcnn_cli.engine import train
from fcnn_cli.machine.signals import Interrupted, Interrupts


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


def test_while_the_loop_polls_and_after_it_every_signal_is_only_noted():
    interrupts = Interrupts()
    with interrupts.polling():
        assert not interrupts.requested()
        assert interrupts._on_signal(signal.SIGINT, sys._getframe()) is None
        assert interrupts.requested()
        assert interrupts._on_signal(signal.SIGTERM, sys._getframe()) is None
    assert interrupts.code == 130  # the first signal decides
    after = Interrupts()
    with after.polling():
        pass
    assert after._on_signal(signal.SIGTERM, sys._getframe()) is None and after.code == 143


def test_work_that_may_be_cut_short_is_not_begun_after_a_signal():
    interrupts = Interrupts()
    with interrupts.polling():
        interrupts._on_signal(signal.SIGTERM, sys._getframe())  # noted
    with pytest.raises(Interrupted) as e:
        with interrupts.breaking():
            pytest.fail("the plots were begun after the signal")
    assert e.value.code == 143


def test_a_requested_stop_ends_training_after_the_last_complete_epoch(quakes):
    class StopInEpoch3:
        """Asks to stop halfway through the third epoch, as a signal there would."""
        polling = Interrupts.polling

        def __init__(self):
            self._phase, self.steps = "before", 0

        def requested(self):
            self.steps += 1
            return self.steps > 2.5 * steps_per_epoch

    config = train.TrainConfig(epochs=5, batch_size=64)
    steps_per_epoch = -(-int(len(quakes.frame) * 0.9) // 64)
    cut = train.fit(quakes, config, stop=StopInEpoch3())
    assert cut.interrupted and cut.resume_state["epoch"] == 2 and len(cut.history) == 2
    resumed = train.fit(quakes, config, resume=cut.resume_state)
    whole = train.fit(quakes, config)
    a, b = whole.predictor.net.state_dict(), resumed.predictor.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


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
