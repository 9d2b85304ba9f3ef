"""A sweep's leaderboard as a figure."""

import pytest

from fcnn_cli.results.plots import leaderboard
from plotted import decoded


def _leaderboard_row(k, mean, failed=False):
    row = {"run": f"/s/depth={k}-0123456789", "depth": k, "seeds": 3, "seconds": 1.0}
    if failed:
        return {**row, "mode": "failed", "error": "diverged"}
    return {**row, "metric": "rmse", "val_rmse_mean": mean, "val_rmse_std": 0.1,
            "test_rmse_mean": mean + 0.05, "test_rmse_std": 0.2}


def test_leaderboard_figure_shows_the_best_finished_combinations(tmp_path, monkeypatch):
    assert leaderboard.leaderboard_plot([_leaderboard_row(1, 0, failed=True)],
                                        tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()
    monkeypatch.setattr(leaderboard, "MAX_LEADERBOARD_ROWS", 3)
    drawn = []
    monkeypatch.setattr(leaderboard, "save", lambda fig, path: drawn.append(fig) or path)
    rows = [_leaderboard_row(k, 1.0 + k) for k in range(5)] + [_leaderboard_row(9, 0, True)]
    leaderboard.leaderboard_plot(rows, tmp_path / "leaderboard.png")
    ax = drawn[0].axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["depth=0", "depth=1", "depth=2"]
    assert ax.get_title() == "Leaderboard: 5 combinations (the best 3 shown; 1 failed, not shown)"
    validation = ax.containers[0]  # an errorbar's points and the ± std bars
    assert list(validation.lines[0].get_xdata()) == [1.0, 2.0, 3.0]
    bars = validation.lines[2][0].get_segments()
    assert [tuple(s[:, 0]) for s in bars] == [pytest.approx((m - 0.1, m + 0.1))
                                             for m in (1.0, 2.0, 3.0)]
    leaderboard.pyplot().close(drawn[0])


def test_leaderboard_figure_is_a_png(tmp_path):
    path = leaderboard.leaderboard_plot([_leaderboard_row(k, 1.0 + k) for k in range(2)],
                                        tmp_path / "leaderboard.png")
    size, _ = decoded(path)
    assert size[0] > 400 and size[1] > 200
