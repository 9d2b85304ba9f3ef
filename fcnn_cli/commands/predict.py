"""fcnn predict: a model's predictions for every row of a table, written chunk by chunk."""

import logging

import click

from fcnn_cli.commands.options import (FILE, check_fill, device_option, force_option, nan_option,
                                       option, output_option, threshold_option, user_errors)
from fcnn_cli.core.config import repeated
from fcnn_cli.core.errors import FcnnError


def _keep_list(ctx, param, values):
    names = [c for v in values for c in v.split(",") if c]
    twice = repeated(names)
    if twice is not None:
        raise click.BadParameter(f"{twice!r} given more than once")
    return names


@click.command()
@click.argument("model", shell_complete=FILE)
@click.argument("data", shell_complete=FILE)
@option("--keep", multiple=True, metavar="COL", callback=_keep_list,
        help="Copy this input column (an ID, say) into the output; repeatable.")
@output_option("-", "Output file (.csv, .parquet, .root, .h5 or .fits); '-' for CSV on "
               "stdout.")
@threshold_option
@nan_option
@device_option
@option("--members", is_flag=True,
        help="For an ensemble, also each member's prediction (<label>_pred_m<k>; "
             "<label>_std_m<k> or each class's p_<class>_m<k>).")
@option("--select", is_flag=True,
        help="For a model trained with --where: write only the rows that pass its selection "
             "(default: every row, with a 0/1 'selected' column).")
@force_option
@user_errors
def predict(model, data, keep, output, threshold, nan, device, members, select, force):
    """Predictions of MODEL for every row of DATA ('-' for stdin); labels may be absent.

    Writes one <target>_pred column per label, after any --keep columns; for classes the
    predicted class name and one p_<class> probability column per class: the class is the
    signal class where p(signal) is at least the cut of the model's working point (train
    --working-point) or --threshold, else the most probable class. An ensemble's
    prediction is its members' mean, with <target>_std (regression: the predictive standard
    deviation) or <target>_entropy (classes); a Gaussian model's has <target>_std too.

    DATA holds the raw columns: the model makes its --define and --objects columns itself.
    A model trained with --where scores every row and says in a 0/1 'selected' column (after
    the --keep columns) which rows pass its selection (a row that fails it and lacks a feature
    value gets empty predictions, unless the model fills missing values: --nan fill);
    --select writes only the rows that pass.

    \b
    Examples:
      fcnn predict runs/quakes/model.pt new.csv -o predictions.parquet
      fcnn simulate earthquakes -n 5 -o - | fcnn predict runs/quakes/model.pt - --keep x,y
      fcnn predict runs/dimuon/model.pt events.root:Events --keep run,event --select
    """
    from fcnn_cli.data.columns import check_flat, drop_incomplete
    from fcnn_cli.data.applying import SELECTED, every_row, predicting
    from fcnn_cli.data.tables import input_file, iter_tables
    from fcnn_cli.data.writer import TableWriter
    from fcnn_cli.network import checkpoint
    from fcnn_cli.results.runs import check_output

    check_output(output, [model, input_file(data)], force)
    writer = TableWriter(output)  # an unknown suffix is refused here, before any work
    iter_tables(data)  # a missing file is reported before torch loads
    predictor = checkpoint.load(model, device)
    check_fill(nan, predictor, model)
    if members and not predictor.members:
        logging.getLogger("fcnn_cli").warning(
            "--members: %s is one network, not an ensemble: its prediction is all", model)
    # Kept columns in the types they are read in, as features and training read them: a fold
    # column kept must hash as the value its network's training hashed (numbers as numbers).
    chunks = iter_tables(data)
    recipe = predictor.recipe
    if recipe is not None and recipe.where and not select:
        chunks, recipe = _without_label_selection(chunks, recipe, predictor)
    flag = [SELECTED] if recipe is not None and recipe.where and not select else []
    clash = [c for c in keep if c in predictor.output_columns(members) + flag]
    if clash:
        raise FcnnError(f"--keep {', '.join(map(repr, clash))}: the predictions have a column "
                        "of that name; keep other columns, or rename these in the input")
    if select and (recipe is None or not recipe.where):
        logging.getLogger("fcnn_cli").warning(
            "--select: %s was trained without a selection (--where): every row is written",
            model)
    if recipe is not None:
        chunks = predicting(recipe, chunks, predictor.columns, keep_selected=select)
    import pandas as pd

    if nan == "drop":
        chunks = (drop_incomplete(t, predictor.columns) for t in chunks)
    chunks, writer.metadata = predictor.fold_metadata(chunks)  # k-fold's: how rows are scored

    def scored(tables):
        return predictor.predict_chunks(tables, threshold, members)

    with writer:
        fills = predictor.filler is not None
        for table, predictions in (every_row(chunks, scored, predictor.columns, fills)
                                   if flag else scored(chunks)):
            missing = [c for c in keep if c not in table.frame.columns]
            if missing:
                raise FcnnError(f"{table.name}: no column(s) {', '.join(map(repr, missing))} "
                                "to --keep")
            check_flat(table, keep, "kept")
            writer.write(pd.concat([table.frame[keep + flag], predictions], axis=1))


def _without_label_selection(chunks, recipe, predictor):
    """(the chunks, the recipe to apply): the model's recipe without its selection where the
    selection reads a label that the table lacks (and nothing else it lacks): unlabelled rows
    are what predict is for, so every row is scored, with no column that says which pass."""
    import dataclasses
    import itertools

    from fcnn_cli.data.applying import SELECTED

    first = next(chunks, None)
    if first is None:
        return iter(()), recipe
    chunks = itertools.chain([first], chunks)
    columns = set(first.frame.columns)
    features = predictor.columns
    lacking = [c for c in recipe.needs(features, select=True, weigh=False) if c not in columns]
    if not lacking or set(lacking) - set(predictor.targets) or \
            any(c not in columns for c in recipe.needs(features, select=False, weigh=False)):
        return chunks, recipe
    logging.getLogger("fcnn_cli").warning(
        "%s: the selection %r reads the label(s) %s, which the table lacks: every row is "
        "scored, without a %r column", first.name, recipe.where,
        ", ".join(map(repr, lacking)), SELECTED)
    return chunks, dataclasses.replace(recipe, where=None)
