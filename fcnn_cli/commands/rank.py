"""fcnn rank: which inputs a model leans on, by permutation importance on labelled rows."""

import json

import click

from fcnn_cli.commands.options import (DIR, FILE, device_option, force_option,
                                       labelled_rows_options, labelled_sources, nan_option,
                                       option, positive, usage_errors, user_errors)
from fcnn_cli.core.console import rich_console
from fcnn_cli.core.errors import printable_all


@click.command()
@click.argument("model", shell_complete=FILE)
@click.argument("data", required=False, shell_complete=FILE)
@labelled_rows_options
@option("--repeats", type=int, default=5, callback=positive,
        help="Shuffles of each input: the mean and spread of the metric's loss over them.")
@option("--seed", type=int, default=0, help="Seed of the shuffles and of --rows' sample.")
@option("--rows", type=int, default=None, callback=positive, metavar="N",
        help="Rank a uniform random sample of N rows (seeded) instead of all of them; "
             "needed where the rows do not fit in memory.")
@option("--json", "as_json", is_flag=True, help="Print the ranking as JSON on stdout.")
@option("-o", "--plots", "plots_dir", metavar="DIR", shell_complete=DIR,
        help="Draw importance.png (bars with the spread) and correlations.png (the inputs' "
             "correlations in each class) here.")
@nan_option
@device_option
@force_option
@user_errors
def rank(model, data, samples, repeats, seed, rows, weight, no_weight, no_select, as_json,
         plots_dir, nan, device, force):
    """Rank the inputs of MODEL (a model.pt) by permutation importance on the labelled table
    DATA ('-' for stdin), or on samples of its classes (--sample).

    Each input is shuffled among the rows, --repeats times, and the model scored again: the
    loss of the headline metric (ROC AUC for two classes, accuracy for more; the RMSE's rise,
    or the mean distance's for a point) says how much the model needs it. The features are
    shuffled as the network sees them; for a model with --define columns, each raw column
    the definitions read is shuffled too, and the definitions made again. The rows are read
    as evaluate reads them (selection, weights) and held in memory.

    \b
    Examples:
      fcnn rank runs/quakes/model.pt test.csv
      fcnn rank runs/dimuon/model.pt --sample 'signal=sig.root' \\
          --sample 'background=bkg.root' --repeats 10 --plots ranking/
      fcnn rank runs/big/model.pt big.parquet --rows 200000 --json | jq '.inputs[0]'
    """
    from fcnn_cli.core.errors import FcnnError
    from fcnn_cli.core.fileio import STDIO, check_output, writing
    from fcnn_cli.data.samples import of_options
    from fcnn_cli.data.tables import input_file, iter_tables
    from fcnn_cli.results import runs

    with usage_errors():
        if bool(data) == bool(samples):
            raise FcnnError("give DATA or samples, not both" if data else
                            "missing argument DATA (or --sample NAME=FILE)", ("samples",))
        if weight and no_weight:
            raise FcnnError("give --weight or --no-weight, not both")
        samples = of_options(samples)
    files = [input_file(f) for s in samples for f in s.find().files]
    inputs = [model, *([input_file(data)] if data else files)]
    if plots_dir:
        from fcnn_cli.results.plots import check_out_dir

        check_out_dir(plots_dir, "plots")
        runs.check_plots_dir(plots_dir, inputs=inputs, force=force)
    check_output(STDIO, inputs)
    if data:
        iter_tables(data)  # a missing file is reported before torch loads
    report, ranker, predictor = _ranked(model, data, samples, weight, no_weight, no_select,
                                        nan, rows, seed, repeats, device)
    if plots_dir:
        report["plots"] = [str(p) for p in _draw(report, ranker, predictor, plots_dir)]
    if as_json:
        with writing(STDIO):
            click.echo(json.dumps(report, indent=2))
        return
    from fcnn_cli.results.ranking import printed

    with writing(STDIO):
        rich_console(stderr=False).print(printed(printable_all(report)))


def _ranked(model, data, samples, weight, no_weight, no_select, nan, rows, seed, repeats,
            device):
    """(the report, the Ranking of the rows ranked on, the predictor)."""
    from fcnn_cli.data import applying
    from fcnn_cli.network import checkpoint
    from fcnn_cli.results import ranking
    from fcnn_cli.results.evaluation import evaluate

    predictor = checkpoint.load(model, device)
    recipe, sources, weighs = labelled_sources(predictor, data, samples, weight, no_weight)
    ranker, tally = ranking.of_sources(predictor, recipe, sources, not no_select, weighs, nan,
                                       rows, seed)
    # The rows as they are, scored as evaluate scores them: its warnings (rows the model was
    # trained on) hold for the ranking too.
    base = evaluate(predictor, [ranker.table], paths=(model, data) if data else None,
                    weight=ranker.weight)
    ranked = ranker.rank(repeats, seed, ranking.value(ranker.metric()[0], base))
    report = {"model": str(model), "data": "<stdin>" if data == "-" else str(data or
                                                                            recipe.name()),
              **ranked, "warnings": base["warnings"],
              **applying.evaluation_notes(recipe, tally, not no_select, weighs)}
    return report, ranker, predictor


def _draw(report, ranker, predictor, out_dir):
    from pathlib import Path

    from fcnn_cli.core.fileio import writing
    from fcnn_cli.data.categories import is_index
    from fcnn_cli.results.plots.figures import noting, recipe_note
    from fcnn_cli.results.plots.ranking import correlation_plot, importance_plot
    from fcnn_cli.results.ranking import correlations

    out_dir = Path(out_dir)
    with writing(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
    recipe = predictor.recipe.to_dict() if predictor.recipe is not None else None
    # Of the network's inputs: a categorical column's one-hot inputs each; a level's index (of
    # a column of many levels) is no quantity to correlate.
    features = [name for name in predictor.features if not is_index(name)]
    with noting(recipe_note(recipe)):
        drawn = [importance_plot(report, out_dir / "importance.png")]
        if features:
            matrices = correlations(predictor.encoded(ranker.table), features, predictor.task,
                                    ranker.weight)
            drawn.append(correlation_plot(matrices, features, out_dir / "correlations.png"))
    return drawn
