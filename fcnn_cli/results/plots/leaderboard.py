"""A sweep's leaderboard as a figure: the ranked combinations' headline metric, ± its spread
over the seeds."""

from pathlib import Path

from fcnn_cli.results.plots.figures import drawing, pyplot, save

MAX_LEADERBOARD_ROWS = 60  # combinations a leaderboard figure shows, the best ones


@drawing()
def leaderboard_plot(rows, path):
    """A sweep's ranked combinations (:func:`fcnn_cli.sweeps.leaderboard.leaderboard`, best at the top):
    the validation (and test) mean of the headline metric with ± its standard deviation over
    the seeds as error bars, ranked as the leaderboard ranks (by validation). None, and
    nothing written, where no combination has a validation metric (none finished, or the
    sweep kept no validation rows)."""
    finished = [r for r in rows if f"val_{r.get('metric')}_mean" in r]
    ranked = finished[:MAX_LEADERBOARD_ROWS]
    if not ranked:
        return None
    plt = pyplot()
    metric = ranked[0]["metric"]
    names = [Path(r["run"]).name.rsplit("-", 1)[0] for r in ranked]  # the values, not the hash
    fig, ax = plt.subplots(figsize=(5.0 + 0.07 * max(map(len, names)), 2.2 + 0.3 * len(ranked)),
                           layout="constrained")
    for shift, split in ((-0.1, "val"), (0.1, "test")):
        found = [(i, r[f"{split}_{metric}_mean"], r[f"{split}_{metric}_std"])
                 for i, r in enumerate(ranked) if f"{split}_{metric}_mean" in r]
        if found:
            at, mean, std = zip(*found)
            ax.errorbar(mean, [i + shift for i in at], xerr=std, fmt="o", capsize=3,
                        label={"val": "validation", "test": "test"}[split])
    ax.set_yticks(range(len(ranked)), names, fontsize=8)
    ax.set_ylim(len(ranked) - 0.5, -0.5)  # the best at the top
    failed = sum("error" in r for r in rows)
    notes = [f"the best {len(ranked)} shown"] if len(ranked) < len(finished) else []
    notes += [f"{failed} failed, not shown"] if failed else []
    ax.set(xlabel=f"{metric.replace('_', ' ')} (mean ± std over seeds)",
           title=f"Leaderboard: {len(finished)} combinations"
           + (f" ({'; '.join(notes)})" if notes else ""))
    ax.grid(alpha=0.3, axis="x")
    fig.legend(loc="outside lower center", ncols=2)  # beside the points, never over them
    return save(fig, path)
