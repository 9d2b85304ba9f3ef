"""fcnn predict: a model's predictions for every row of a table, written chunk by chunk."""

import logging

import click

from fcnn_cli.commands.options import (FILE, device_option, force_option, nan_option, option,
                                       output_option, threshold_option, user_errors)
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
@force_option
@user_errors
def predict(model, data, keep, output, threshold, nan, device, members, force):
    """Predictions of MODEL for every row of DATA ('-' for stdin); labels may be absent.

    Writes one <target>_pred column per label, after any --keep columns; for classes the
    predicted class name and one p_<class> probability column per class. An ensemble's
    prediction is its members' mean, with <target>_std (regression: the predictive standard
    deviation) or <target>_entropy (classes); a Gaussian model's has <target>_std too.

    \b
    Examples:
      fcnn predict runs/quakes/model.pt new.csv -o predictions.parquet
      fcnn simulate earthquakes -n 5 -o - | fcnn predict runs/quakes/model.pt - --keep x,y
    """
    from fcnn_cli.data.columns import check_flat, drop_incomplete
    from fcnn_cli.data.tables import input_file, iter_tables
    from fcnn_cli.data.writer import TableWriter
    from fcnn_cli.network import checkpoint
    from fcnn_cli.results.runs import check_output

    check_output(output, [model, input_file(data)], force)
    writer = TableWriter(output)  # an unknown suffix is refused here, before any work
    iter_tables(data)  # a missing file is reported before torch loads
    predictor = checkpoint.load(model, device)
    if members and not predictor.members:
        logging.getLogger("fcnn_cli").warning(
            "--members: %s is one network, not an ensemble: its prediction is all", model)
    # Kept columns as written (an ID 007 stays 007), but for features, which must be numbers.
    chunks = iter_tables(data, text=[c for c in keep if c not in predictor.features])
    clash = [c for c in keep if c in predictor.output_columns(members)]
    if clash:
        raise FcnnError(f"--keep {', '.join(map(repr, clash))}: the predictions have a column "
                        "of that name; keep other columns, or rename these in the input")
    import pandas as pd

    if nan == "drop":
        chunks = (drop_incomplete(t, predictor.features) for t in chunks)
    chunks, writer.metadata = predictor.fold_metadata(chunks)  # k-fold's: how rows are scored
    with writer:
        for table, predictions in predictor.predict_chunks(chunks, threshold, members):
            missing = [c for c in keep if c not in table.frame.columns]
            if missing:
                raise FcnnError(f"{table.name}: no column(s) {', '.join(map(repr, missing))} "
                                "to --keep")
            check_flat(table, keep, "kept")
            writer.write(pd.concat([table.frame[keep], predictions], axis=1))
