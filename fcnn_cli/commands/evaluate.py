"""fcnn evaluate: a model's metrics on a labelled table, overall and in bins of its columns."""

import contextlib
import json
import logging
import warnings

import click

from fcnn_cli.commands.options import (DIR, FILE, check_fill, device_option, field_option,
                                       force_option, labelled_rows_options, labelled_sources,
                                       nan_option, option, output_option, positive,
                                       selection_of, threshold_option, usage_errors,
                                       user_errors)
from fcnn_cli.core.config import TrainConfig
from fcnn_cli.core.console import rich_console
from fcnn_cli.core.errors import FcnnError, printable_all


def _edges(ctx, param, values):
    try:
        return [[float(v) for v in value.split(",")] for value in values] or None
    except ValueError:
        raise click.BadParameter("give numbers separated by commas, e.g. 0,10,20,50") from None


@click.command()
@click.argument("model", shell_complete=FILE)
@click.argument("data", required=False, shell_complete=FILE)
@labelled_rows_options
@option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@output_option(None, "Also write the report as JSON to this file; '-' for JSON on stdout "
               "(as --json).")
@option("--by", multiple=True, metavar="COLUMN",
        help="Bias and resolution (or accuracy) in bins of this column of DATA (a label, a "
             "feature or any other); twice for a 2-D map.")
@option("--bins", type=int, default=None,
        help="Equal bins over each --by column's range. [default: 10]")
@option("--edges", multiple=True, callback=_edges, metavar="A,B,…",
        help="Bin edges instead of --bins; once for each --by column.")
@field_option(TrainConfig, "position", "The labels that form a point (default: as the model "
              "was trained).")
@option("--plots", "plots_dir", metavar="DIR", shell_complete=DIR,
        help="Draw plots of the rows (a sample of at most 100 000) and of the bins here.")
@threshold_option
@field_option(TrainConfig, "signal")
@field_option(TrainConfig, "working_point", "Classification: the figures of merit at this "
              "signal efficiency (eff=0.7) or background efficiency (bkg=0.01). [default: at "
              "--threshold, else at the model's working point]")
@field_option(TrainConfig, "yields")
@field_option(TrainConfig, "lumi")
@option("--ranking", is_flag=True, help="Also rank the inputs by permutation importance, as "
        "fcnn rank does (the rows are then held in memory).")
@option("--repeats", type=int, default=None, callback=positive,
        help="With --ranking: shuffles of each input. [default: 5]")
@option("--no-baselines", is_flag=True, help="Leave out the baselines that MODEL's run fitted "
        "beside it (its baseline_*.pt files, scored beside the network by default).")
@nan_option
@device_option
@force_option
@user_errors
def evaluate(model, data, samples, weight, no_weight, no_select, as_json, output, by, bins,
             edges, position, plots_dir, threshold, signal, working_point, yields, lumi,
             ranking, repeats, no_baselines, nan, device, force):
    """Metrics of MODEL (a model.pt) on the labelled table DATA ('-' for stdin), or on
    samples of its classes (--sample).

    DATA holds the raw columns: the model makes its --define and --objects columns itself,
    keeps the rows that pass its selection (the report counts those removed; --no-select
    keeps all) and weighs the events with its weight where DATA holds the columns it reads.
    The baselines its run fitted beside it (baseline_*.pt there) are scored beside it.

    \b
    Examples:
      fcnn evaluate runs/quakes/model.pt test.csv
      fcnn evaluate runs/quakes/model.pt test.parquet --json | jq .overall.rmse
      fcnn evaluate runs/quakes/model.pt test.csv --by x --by y --bins 8 --plots plots/
      fcnn evaluate runs/dimuon/model.pt --sample 'signal=new_sig_*.root*0.02' \\
          --sample 'background=new_bkg.root' --by mass --bins 20
      fcnn evaluate runs/dimuon/model.pt test.parquet --working-point bkg=0.01 --lumi 140
      fcnn evaluate runs/dimuon/model.pt test.parquet --ranking --repeats 3
    """
    point = _checked(data, samples, weight, no_weight, by, bins, edges, position, threshold,
                     working_point, ranking, repeats)
    with usage_errors():
        from fcnn_cli.data.samples import of_options

        samples = of_options(samples)  # each sample's text checked before any file is read
    _check_outputs(model, data, samples, output, plots_dir, force)
    predictor, recipe, sources, weighs = _read(model, data, samples, weight, no_weight, nan,
                                               device)
    with usage_errors():
        set_aside = _name_signal(predictor.task, signal)
        figures = _figures(predictor.task, signal, point, yields, lumi, threshold, weighs)
    if set_aside:
        logging.getLogger("fcnn_cli").warning(set_aside)
    name = "<stdin>" if data == "-" else str(data or recipe.name())
    report = _scored(model, data, name, predictor, recipe, sources, weighs, figures,
                     not no_select, nan, threshold, position, by, bins, edges, plots_dir,
                     not no_baselines)
    report.update({"notes": [set_aside]} if set_aside else {})
    if ranking:
        from fcnn_cli.results.ranking import of_sources

        ranker, _ = of_sources(predictor, recipe, sources, not no_select, weighs, nan,
                               position=position)
        report["ranking"] = ranker.rank(repeats or REPEATS)
    _written(report, output, as_json, predictor.task, figures)


# Shuffles of each input that --ranking makes where --repeats is not given (as fcnn rank).
REPEATS = 5


def _checked(data, samples, weight, no_weight, by, bins, edges, position, threshold,
             working_point, ranking, repeats):
    """The options checked before any file is read (usage errors): the working point asked
    (:func:`parse_working_point`'s (key, value), or None)."""
    from fcnn_cli.core.config import check_bins, check_position, parse_working_point
    from fcnn_cli.core.fileio import STDIO

    with usage_errors():
        check_bins(by, bins, edges)
        check_position(position)
        point = parse_working_point(working_point)
        if point and threshold is not None:
            raise FcnnError("give working_point or threshold, not both: each asks for the "
                            "working point of the figures", ("working_point", "threshold"))
        if bool(data) == bool(samples):
            raise FcnnError("give DATA or samples, not both" if data else
                            "missing argument DATA (or --sample NAME=FILE)", ("samples",))
        if weight and no_weight:
            raise FcnnError("give --weight or --no-weight, not both")
        if ranking and data == STDIO:
            # the ranking reads the rows again, and stdin can be read once
            raise FcnnError("ranking reads DATA a second time, which stdin ('-') cannot give: "
                            "write the rows to a file", ("ranking",))
        if repeats is not None and not ranking:
            raise FcnnError("repeats is the shuffles of ranking: give ranking with it",
                            ("repeats", "ranking"))
    return point


def _check_outputs(model, data, samples, output, plots_dir, force):
    """Before anything is read: the report's file and the plots' directory may be written,
    and replace none of the inputs."""
    import os
    from pathlib import Path

    from fcnn_cli.core.fileio import STDIO, check_output
    from fcnn_cli.data.tables import input_file
    from fcnn_cli.results import runs

    files = [input_file(f) for s in samples for f in s.find().files]
    inputs = [model, *([input_file(data)] if data else files)]
    if plots_dir:
        from fcnn_cli.results.plots import check_out_dir

        check_out_dir(plots_dir, "plots")
        runs.check_plots_dir(plots_dir, inputs=inputs, force=force)
    check_output(STDIO, inputs)  # the report goes there, or its tables
    if output:
        if plots_dir and output != STDIO and Path(output).suffix == ".png" and \
                Path(os.path.realpath(output)).parent == Path(os.path.realpath(plots_dir)):
            raise FcnnError(f"{output}: is in the plots directory {str(plots_dir)!r}, whose PNG "
                            "files the plots replace; write the report elsewhere")
        runs.check_output(output, inputs, force)


def _read(model, data, samples, weight, no_weight, nan, device):
    """(the predictor of ``model``, the evaluation's recipe, its sources, whether the rows are
    weighed)."""
    from fcnn_cli.data.tables import iter_tables
    from fcnn_cli.network import checkpoint

    if data:
        iter_tables(data)  # a missing file is reported before torch loads
    predictor = checkpoint.load(model, device)
    check_fill(nan, predictor, model)
    return (predictor, *labelled_sources(predictor, data, samples, weight, no_weight))


def _scored(model, data, name, predictor, recipe, sources, weighs, figures, select, nan,
            threshold, position, by, bins, edges, plots_dir, baselines):
    """The report of the rows of ``sources``: the network's, its run's ``baselines`` beside
    it, and what the recipe did to the rows."""
    from fcnn_cli.data import applying
    from fcnn_cli.data.columns import drop_incomplete
    from fcnn_cli.results import baselines as beside_network
    from fcnn_cli.results.evaluation import evaluate as evaluated

    tally = {"removed": 0, "kept": 0}
    # The labels of DATA are checked by the predictor, which says why they are needed.
    read = predictor.columns + recipe.made(predictor.targets)
    chunks = applying.evaluating(recipe, sources, read, tally, select, weighs)
    chunks = _some_selected(chunks, tally, selection_of(recipe), name)
    if nan == "drop":
        chunks = (drop_incomplete(t, predictor.columns + predictor.targets,
                                  labels=predictor.targets) for t in chunks)
    weights = {"weight": recipe.weight_column} if weighs else {}
    beside = [] if not baselines else beside_network.beside(
        model, predictor, threshold, position, figures, plots=bool(plots_dir), **weights)
    with _unsummable_weights(name) if weighs else contextlib.nullcontext():
        scores = evaluated(predictor, chunks, threshold, position, by, bins, edges, plots_dir,
                           (model, data) if data else None, figures=figures,
                           watchers=beside, **weights)
    scores.update({"baselines": {b.name: b.report() for b in beside}} if beside else {})
    return {"model": str(model), "data": name, **scores,
            **applying.evaluation_notes(recipe, tally, select, weighs, predictor.recipe)}


def _written(report, output, as_json, task, figures):
    """The report as JSON to ``output`` (a file, or '-'), on stdout with ``as_json``, else
    as tables."""
    from fcnn_cli.core.fileio import STDIO, write_text, writing
    from fcnn_cli.results.report import baseline_table, binned_tables, recipe_table, tables

    text = json.dumps(report, indent=2) + "\n"
    if output and output != STDIO:
        write_text(output, text)
    if as_json or output == STDIO:
        write_text(STDIO, text)
        return
    console, shown = rich_console(stderr=False), printable_all(report)
    side = [baseline_table(shown)] if "baselines" in shown else []
    with writing(STDIO):
        for t in [*tables(shown, title=shown["data"]), *side, *recipe_table(shown)]:
            console.print(t)
        for t in binned_tables(shown["binned"]) if "binned" in shown else ():
            console.print(t)
        if figures is None and task.kind == "classify":
            from rich.text import Text

            console.print(Text(f"No figures of merit: {len(task.classes)} classes and none "
                               "is signal (--signal CLASS names one).", style="italic"))
        if "ranking" in shown:
            from fcnn_cli.results.ranking import printed

            console.print(printed(shown["ranking"]))


def _figures(task, signal, point, yields, lumi, threshold, weighs):
    """The figures of merit of a classification ``task`` (None where it has several classes
    and none is signal) whose signal is ``signal`` (:func:`_name_signal`): at the working
    point asked, else at the threshold, else at the model's own working point."""
    from fcnn_cli.engine.figures import chosen_at, of_options

    if threshold is not None or task.kind != "classify":
        return of_options(task, signal, point, yields, lumi, threshold, weighs)
    return chosen_at(of_options(task, signal, point, yields, lumi, task.cut(), weighs), task)


def _name_signal(task, signal):
    """Make ``signal`` (a class name, or None: the model's) the signal of a classification
    ``task``, which --threshold then cuts on; a working point the model chose for another
    class no longer applies: what it set aside, in a line, else None (the predicted classes
    change with it, which the user should not find out from the accuracy alone)."""
    if signal is None or task.kind != "classify":
        return None
    index = task.signal_index(signal)
    if index == task.signal_index():
        return None
    point, before = task.working_point, task.signal_index()  # None: several, none signal
    task.signal, task.working_point = task.classes[index], None
    if point is None:
        return None
    chosen_for = task.classes[before]  # a model with a working point has a signal class
    from fcnn_cli.results.report import working_point_text

    text = working_point_text(point, chosen_for)
    return (f"--signal {signal}: the model's working point ({text}) is for {chosen_for}: set "
            f"aside, each row's class is its most probable one unless --threshold cuts on "
            f"p({signal})")


def _some_selected(chunks, tally, cut, name):
    """The chunks to evaluate; past the last, an error naming the selection where it removed
    every row (the evaluation would only say that no rows are left)."""
    yield from chunks
    if cut is not None and not tally["kept"] and tally["removed"]:
        raise FcnnError(f"{name}: the selection {cut} removed every row "
                        f"({tally['removed']}): none to evaluate; no_select=True evaluates "
                        "them all", ("no_select",))


@contextlib.contextmanager
def _unsummable_weights(name):
    """numpy's overflow and underflow warnings, which weights far from 1 (a sample's scale of
    1e160) raise where a figure squares them, as one line of fcnn's (not numpy's lines with
    their source paths), with the invalid values that follow them (inf - inf); any other
    warning as it is."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        yield
    # numpy's "overflow (underflow) encountered", and the invalid values they lead to
    flows = any("flow" in str(w.message) for w in caught)
    for w in caught:
        if not (flows and issubclass(w.category, RuntimeWarning)):
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    if flows:
        logging.getLogger("fcnn_cli").warning(
            "%s: the weights are too large or too small to square and sum in floating point: "
            "some weighted figures are NaN; scale the weights nearer 1", name)
