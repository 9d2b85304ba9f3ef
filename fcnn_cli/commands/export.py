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

    Raw feature columns in (input 'features', float32, any number of rows); out what predict
    writes: the labels in their own units ('predictions') and, for a Gaussian head or an
    ensemble, their standard deviations ('std'); for classes the probabilities
    ('probabilities', an ensemble's mean) and an ensemble's entropy ('entropy'). The feature,
    label and class names are in the model's metadata. Before the file is written, onnxruntime
    runs the graph, whose outputs must equal the model's (computed in float64) within what
    float32 rounding allows. Needs pip install 'fcnn[onnx]'.

    \b
    Example:
      fcnn export runs/quakes/model.pt quakes.onnx
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
