"""fcnn export: a model as an ONNX graph, checked against the model before it is written."""

import logging

import click

from fcnn_cli.commands.options import FILE, force_option, user_errors


@click.command()
@click.argument("model", shell_complete=FILE)
@click.argument("output", metavar="OUTPUT.onnx", shell_complete=FILE)
@force_option
@user_errors
def export(model, output, force):
    """MODEL (a model.pt) as an ONNX graph in OUTPUT.onnx ('-' for stdout), for use outside
    Python.

    Raw feature columns in (input 'features', float32, any number of rows; a categorical
    column as its one-hot inputs, whose levels the metadata lists); out what predict
    writes: the labels in their own units ('predictions') and, for a Gaussian head or an
    ensemble, their standard deviations ('std'); for classes the probabilities
    ('probabilities', an ensemble's mean) and an ensemble's entropy ('entropy'). The feature,
    label and class names are in the model's metadata. Before the file is written, onnxruntime
    runs the graph, whose outputs must equal the model's (computed in float64) within what
    float32 rounding allows. Needs pip install 'fcnn[onnx]'.

    Where --define makes features, the graph computes the definitions: it takes the raw columns
    they are made from (input 'columns', float64, named in the metadata's 'columns'). A
    definition that reads a list column (--objects, NAME[i], len/sum/max/min) is refused: an
    ONNX graph takes one number a column. A model trained with --nan fill fills missing (NaN,
    infinite) values in the graph as predict does. A --where selection is not in the graph:
    the metadata's 'selection' holds it for the caller to apply. A k-fold model's graph gives
    the mean of its networks (metadata 'folds'), as predict does without the fold column:
    with --fold-by, a warning says that predict, not the graph, scores the events trained on
    out of fold.

    \b
    Examples:
      fcnn export runs/quakes/model.pt quakes.onnx
      fcnn export runs/pairs/model.pt pairs.onnx   # trained with --define mass=…
    """
    from fcnn_cli.network import checkpoint
    from fcnn_cli.network import export as onnx_export
    from fcnn_cli.results.runs import check_output

    check_output(output, [model], force)
    onnx_export.require()
    predictor = checkpoint.load(model, "cpu")
    onnx_export.export(predictor, output)
    if output != "-":
        logging.getLogger("fcnn_cli").info("wrote %s", output)
