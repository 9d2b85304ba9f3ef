"""bench/startup.py: its profile hook finds every function it marks (a renamed one would leave
its phase out of the figures without a word), and the phases add up to the whole process."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import startup  # noqa: E402  (bench/ is a folder of scripts, not a package)


@pytest.mark.slow
def test_every_phase_of_train_predict_and_evaluate_is_marked(tmp_path, quakes_csv):
    run = tmp_path / "run"
    commands = {"train": [quakes_csv, "--epochs", 2, "-o", run],
                "predict": [run / "model.pt", quakes_csv, "-o", tmp_path / "p.csv"],
                "evaluate": [run / "model.pt", quakes_csv]}
    for command, args in commands.items():
        rows = startup.phases(command, args)
        names = [phase for phase, _ in rows]
        expected = [phase for phase, *_ in startup.PHASES[command]]
        assert names[0] == "interpreter start" and names[1:1 + len(expected)] == expected
        assert all(seconds >= 0 for _, seconds in rows)
        assert 0.3 < sum(seconds for _, seconds in rows) < 120
    assert (tmp_path / "p.csv").is_file() and (run / "plots").is_dir()


def test_runs_take_turns_and_the_least_seconds_of_each_is_kept():
    calls = []
    times = {"a": iter([3.0, 1.0, 2.0]), "b": iter([(5.0, "x"), (4.0, "y"), (6.0, "z")])}
    best = startup.in_turn({name: lambda name=name: calls.append(name) or next(times[name])
                            for name in "ab"}, 3)
    assert calls == ["a", "b"] * 3
    assert best == {"a": 1.0, "b": (4.0, "y")}
