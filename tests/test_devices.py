import os

import pytest
import torch

from fcnn_cli import devices
from fcnn_cli.config import NetConfig, TrainConfig
from fcnn_cli.devices import (RECHECK_SECONDS, TRIAL_SECONDS, ThreadChooser, cpu_budget,
                              thread_ladder, training_threads)

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def cpus(n):
    return lambda pid: set(range(n))


@pytest.mark.parametrize("environ, expected", [
    ({}, 8),
    ({"SLURM_CPUS_PER_TASK": "4"}, 4),
    ({"OMP_NUM_THREADS": "3"}, 3),
    ({"OMP_NUM_THREADS": "2,1"}, 2),  # one count per nesting level: the outer one
    ({"SLURM_CPUS_PER_TASK": "6", "OMP_NUM_THREADS": "2"}, 2),
    ({"SLURM_CPUS_PER_TASK": "2", "OMP_NUM_THREADS": "6"}, 2),
    ({"OMP_NUM_THREADS": "64"}, 8),  # never more than the affinity mask allows
    ({"OMP_NUM_THREADS": "0", "SLURM_CPUS_PER_TASK": "many"}, 8),  # not counts: ignored
    ({"OMP_NUM_THREADS": ""}, 8),
])
def test_budget_is_the_fewest_cpus_that_affinity_and_environment_allow(environ, expected):
    assert cpu_budget(environ, cpus(8)) == expected


def test_budget_reads_the_process_affinity_and_environment(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", cpus(3), raising=False)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert cpu_budget() == 3
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "2")
    assert cpu_budget() == 2


@pytest.mark.parametrize("budget, ladder", [(1, [1]), (2, [2, 1]), (6, [6, 3, 1]),
                                            (16, [16, 8, 4, 2, 1])])
def test_ladder_halves_from_all_cpus_to_one(budget, ladder):
    assert thread_ladder(budget) == ladder


WIDE = NetConfig(n_in=8, n_out=2, width=512, depth=3)
SMALL = NetConfig(n_in=8, n_out=2, width=64, depth=3)


@pytest.fixture
def eight_cpus(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", cpus(8), raising=False)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


@pytest.mark.parametrize("config, net, device, alone, counts", [
    (TrainConfig(threads=3), WIDE, CPU, True, [3]),  # --threads wins over everything
    (TrainConfig(threads=12), SMALL, CPU, True, [12]),
    (TrainConfig(batch_size=32), SMALL, CPU, True, [1]),  # small products: one thread
    (TrainConfig(batch_size=1024), WIDE, CPU, True, [8, 4, 2, 1]),  # timed
    (TrainConfig(batch_size=1024), WIDE, CUDA, True, [8]),
    (TrainConfig(batch_size=1024), WIDE, CPU, False, [8]),  # several processes: not timed
])
def test_training_threads(eight_cpus, config, net, device, alone, counts):
    assert training_threads(config, net, device, alone).counts == counts


def test_inference_threads_are_timed_on_the_cpu_only(eight_cpus):
    assert devices.inference_threads(CPU).counts == [8, 4, 2, 1]
    assert devices.inference_threads(CUDA).counts == [8]


class Machine:
    """A fake clock and thread setting: each unit of work takes the seconds per row that
    ``speed`` gives for the thread count in use."""

    def __init__(self, speed):
        self.now, self.speed, self.applied = 0.0, speed, []
        self.chooser = ThreadChooser(list(speed), clock=lambda: self.now,
                                     apply=self.applied.append)
        self.applied.append(self.chooser.counts[0])  # what in_use would set first

    def work(self, units, rows=100, first=None):
        for k in range(units):
            seconds = self.speed[self.applied[-1]] * rows
            if k == 0 and first is not None:
                seconds = first
            self.now += seconds
            self.chooser.record(seconds, rows)


def units(seconds, per_row, rows=100):
    return int(seconds / (per_row * rows)) + 2


def test_a_busy_neighbour_makes_it_take_fewer_threads():
    machine = Machine({2: 1e-4, 1: 1e-6})  # two threads stall on a descheduled partner
    machine.work(units(TRIAL_SECONDS, 1e-4) + units(TRIAL_SECONDS, 1e-6))
    assert machine.chooser.current == 1 and machine.applied[-1] == 1


def test_all_cpus_stay_when_they_are_faster():
    machine = Machine({2: 1e-6, 1: 2e-6})
    machine.work(units(TRIAL_SECONDS, 1e-6) + units(TRIAL_SECONDS, 2e-6))
    assert machine.applied == [2, 1, 2] and machine.chooser.current == 2


def test_a_count_barely_faster_does_not_replace_the_current_one():
    machine = Machine({2: 1.00e-6, 1: 0.95e-6})  # within the margin: noise, not a neighbour
    machine.work(units(TRIAL_SECONDS, 1e-6) * 2)
    assert machine.chooser.current == 2


def test_the_first_unit_at_a_new_count_is_not_timed():
    machine = Machine({2: 1e-6, 1: 2e-6})
    machine.work(units(TRIAL_SECONDS, 1e-6) + units(TRIAL_SECONDS, 2e-6), first=10.0)
    assert machine.chooser.current == 2  # its threads starting up are not held against it


def test_a_neighbour_that_comes_later_is_found_at_the_next_trial():
    machine = Machine({2: 1e-6, 1: 2e-6})
    machine.work(units(TRIAL_SECONDS, 1e-6) + units(TRIAL_SECONDS, 2e-6))
    assert machine.chooser.current == 2
    machine.speed[2] = 1e-4
    machine.work(units(RECHECK_SECONDS / 2, 1e-4))
    assert machine.chooser.current == 2  # no trial yet: they are costly beside a neighbour
    machine.work(units(RECHECK_SECONDS, 1e-4) + units(TRIAL_SECONDS, 2e-6))
    assert machine.chooser.current == 1


def test_trials_come_rarely_when_units_are_long():
    machine = Machine({2: 1e-2, 1: 2e-2})  # a unit of 100 rows: one or two seconds
    machine.work(4)
    assert machine.chooser.current == 2 and len(machine.applied) == 3
    trial_end = machine.now
    machine.work(10)  # not back after RECHECK_SECONDS: after many times the trial's length
    assert len(machine.applied) == 3 and machine.now - trial_end > RECHECK_SECONDS


def test_a_fixed_count_is_set_and_the_callers_restored():
    before = torch.get_num_threads()
    with ThreadChooser.fixed(1).in_use() as chooser:
        with chooser.timing(10):
            assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_training_and_predict_use_a_chooser_and_leave_the_callers_count(monkeypatch):
    from fcnn_cli import simulate, train

    monkeypatch.setattr(os, "sched_getaffinity", cpus(2), raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    before = torch.get_num_threads()
    table = simulate.earthquakes(n=400, seed=0)
    result = train.fit(table, TrainConfig(epochs=2, batch_size=1024))
    assert torch.get_num_threads() == before
    assert len(result.predictor.predict(table)) == 400
    assert result.predictor.threads.counts == [2, 1]
    assert torch.get_num_threads() == before
