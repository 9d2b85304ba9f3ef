"""The tabular benchmark: fcnn's default network beside scikit-learn's MLP, gradient-boosted
trees (HistGradientBoosting, LightGBM) and RealMLP on a dozen and more tables.

The tables (bench/tabular_tables.py): fcnn's two simulators at 1 000, 5 000 and 20 000 rows and
two noise levels, scikit-learn's bundled real tables (breast cancer, wine, digits, diabetes),
and physics of known structure (a Gaussian mixture with its Bayes optimum, an invariant mass,
a calorimeter's energy sum); by default the simulators at 1 000 rows only. Each has one fixed
split (60 % train, 15 % validation for early stopping, 25 % test) that every method shares;
each method trains once per seed (0 … 2), after one untimed fit on wine.
The methods (bench/tabular_methods.py): fcnn's default through the library, fcnn as one
network (``--ensemble 1``), fcnn with the option sets of ``--fcnn NAME=key=value,…``,
scikit-learn's MLP of the same 3 × 64 shape, HistGradientBoosting and LightGBM (bench/trees.py)
and pytabkit's RealMLP with its defaults; a method whose library is missing is skipped with a
note.

Printed: per table and method, test accuracy and ROC AUC (classification) or RMSE (regression)
as mean ± standard error over the seeds, how far behind the best it is (± the standard error of
a paired bootstrap of the test rows) and the time to fit and predict; then per method, for each
family of tables and for all, on how many tables it is within one standard error of the best
and its mean rank (bench/tabular_summary.py says how). The run's dated record goes to
bench/results/, with every fit's scores unrounded; a --quick run records nothing.
"""

import argparse
import dataclasses
import importlib.util
import sys

from rich.console import Console
from rich.table import Table

import record
import tabular_summary as summary
from fcnn_cli.core.errors import FcnnError
from tabular_methods import METHODS, option_set
from tabular_tables import DEFAULT, FAMILIES, QUICK, TABLES, split

# Three seeds keep the default run within its 20 minutes on 2 cores (RealMLP takes half), one
# the quick run within its 3.
SEEDS, QUICK_SEEDS = 3, 1
# A small table on which every method fits once, untimed, before the timed fits.
WARM_UP = "wine"


@dataclasses.dataclass(frozen=True)
class Fit:
    scores: dict  # every score of the test split
    out: object  # the test split's outputs
    seconds: float  # to fit and predict


def main():
    args = _arguments()
    methods, skipped = _methods(args)
    _warm_up(methods, args.threads)
    runs, optima = {}, {}
    for name in args.tables:
        data = split(name, TABLES[name])
        runs[name] = (summary.score_name(data.kind, data.classes), data.y["test"], {})
        for method, run in methods.items():
            fits = runs[name][2].setdefault(method, [])
            for seed in range(args.seeds):
                out, seconds = run(data, seed, args.threads)
                fits.append(Fit(summary.scores(data.kind, data.y["test"], out), out, seconds))
                print(f"{name} {method} seed {seed}: {fits[-1].scores} ({seconds:.1f} s)",
                      file=sys.stderr)
        if TABLES[name].optimum:
            optima[name] = summary.scores(data.kind, data.y["test"],
                                          TABLES[name].optimum(data.frames["test"]))
    _report(args, runs, optima, skipped)


def _warm_up(methods, threads):
    """One untimed fit of every method, so that no timed fit holds a first call's imports and
    set-up (torch's, scikit-learn's modules; a regression takes the same ones)."""
    data = split(WARM_UP, TABLES[WARM_UP])
    for run in methods.values():
        run(data, 0, threads)


def _arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"the small tables {', '.join(QUICK)}, {QUICK_SEEDS} seeds; "
                        "no record")
    parser.add_argument("--methods", help="comma-separated, of: " + ", ".join(METHODS)
                        + " and the names --fcnn gives (default: all)")
    parser.add_argument("--tables", help="comma-separated, of: " + ", ".join(TABLES)
                        + " (default: the simulators at 1 000 rows, the real and physics tables)")
    parser.add_argument("--seeds", type=int, help=f"seeds per method and table (default "
                        f"{SEEDS}; {QUICK_SEEDS} with --quick)")
    parser.add_argument("--fcnn", action="append", default=[], metavar="NAME=KEY=VALUE,…",
                        help="fcnn with these options of fcnn train, as the method 'fcnn "
                        "NAME' (repeatable): robust=scale=robust")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of every method "
                        "(default 1: on a shared machine more can be slower)")
    args = parser.parse_args()
    args.tables = _names(parser, args.tables, TABLES, QUICK if args.quick else DEFAULT,
                         "table")
    args.seeds = args.seeds or (QUICK_SEEDS if args.quick else SEEDS)
    if args.seeds < 1:
        parser.error("--seeds must be 1 or more")
    try:
        args.option_sets = dict(option_set(text) for text in args.fcnn)
    except FcnnError as e:
        parser.error(str(e))
    known = {**METHODS, **{name: (run, None) for name, run in args.option_sets.items()}}
    args.methods = {m: known[m] for m in _names(parser, args.methods, known, known, "method")}
    return args


def _names(parser, text, known, default, what):
    if text is None:
        return list(default)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        parser.error(f"unknown {what} {', '.join(map(repr, unknown))}; the {what}s are "
                     + ", ".join(known))
    return names


def _methods(args):
    """The methods that can run, and a note for each one skipped for its missing library."""
    methods, skipped = {}, []
    for name, (run, needs) in args.methods.items():
        try:  # imported now, so that no method's first fit times its library's import
            importlib.import_module(needs or "fcnn_cli.engine.train")
        except ImportError:
            skipped.append(f"{name} skipped: {needs} is not installed (make bench-tabular "
                           "installs it)")
        else:
            methods[name] = run
    return methods, skipped


def _report(args, runs, optima, skipped):
    judgements = {name: summary.judged(score, truth, {m: [f.out for f in fits]
                                                      for m, fits in per_method.items()},
                                       {m: [f.scores[score] for f in fits]
                                        for m, fits in per_method.items()})
                  for name, (score, truth, per_method) in runs.items()}
    console = Console(width=150)
    detail = _detail_table(args, runs, optima, judgements)
    console.print(detail)
    families = {family: {n: judgements[n] for n in names if n in judgements}
                for family, names in FAMILIES.items()}
    families = {family: judged for family, judged in families.items() if judged}
    if len(families) > 1:
        families["all tables"] = judgements
    overall = [_summary_table(family, judged, runs) for family, judged in families.items()]
    for table in overall:
        console.print(table)
    for note in skipped:
        console.print(note)
    if not args.quick:
        note = "; ".join(skipped + [f"{name}: {run}" for name, run in args.option_sets.items()])
        record.write("tabular", [record.printed(detail), *map(record.printed, overall),
                                 _fits(runs)], note=note or None)


def _fits(runs):
    """Every fit's scores and time, unrounded: the record's table to compute anew from."""
    columns = ("table", "method", "seed", "accuracy", "auc", "rmse", "fit_s")
    rows = [{"table": name, "method": method, "seed": seed, **fit.scores, "fit_s": fit.seconds}
            for name, (_, _, per_method) in runs.items()
            for method, fits in per_method.items() for seed, fit in enumerate(fits)]
    return record.table("every fit", columns, [{c: row.get(c) for c in columns} for row in rows])


def _detail_table(args, runs, optima, judgements):
    out = Table(title=f"test scores, mean ± standard error over {args.seeds} seed(s)",
                caption="behind: the best's mean less the method's in the score that ranks "
                        "(AUC for two classes, accuracy for more, RMSE for regression) ± its "
                        f"standard error by a paired bootstrap of the test rows "
                        f"({summary.RESAMPLES} resamples); *: within one standard error")
    for column in ("table", "method", "accuracy", "ROC AUC", "RMSE", "behind", "rank",
                   "fit + predict (s)"):
        out.add_column(column, justify="left" if column in ("table", "method") else "right")
    for name, (_, _, per_method) in runs.items():
        for method, fits in per_method.items():
            judged = judgements[name][method]
            cells = {key: _shown(summary.mean_se([f.scores[key] for f in fits]))
                     for key in fits[0].scores}
            behind = f"{judged.behind:.2g} ± {judged.behind_se:.2g}" + \
                (" *" if judged.within else "")
            out.add_row(name, method, cells.get("accuracy", ""), cells.get("auc", ""),
                        cells.get("rmse", ""), behind, f"{judged.rank:g}",
                        f"{summary.mean_se([f.seconds for f in fits])[0]:.2f}")
        if name in optima:
            cells = {key: f"{value:.4g}" for key, value in optima[name].items()}
            out.add_row(name, "optimum", cells.get("accuracy", ""), cells.get("auc", ""),
                        cells.get("rmse", ""), "", "", "")
    return out


def _shown(mean_se):
    mean, se = mean_se
    return f"{mean:.4g} ± {se:.2g}"


def _summary_table(family, judgements, runs):
    out = Table(title=f"per method, {family}")
    for column in ("method", "within 1 SE of the best", "mean rank", "fit + predict, all (s)"):
        out.add_column(column, justify="left" if column == "method" else "right")
    rows = summary.summary(judgements)
    for method, (within, tables, rank) in sorted(rows.items(), key=lambda item: item[1][2]):
        total = sum(f.seconds for name in judgements for f in runs[name][2].get(method, ()))
        out.add_row(method, f"{within} of {tables}", f"{rank:.2f}", f"{total:.1f}")
    return out


if __name__ == "__main__":
    main()
