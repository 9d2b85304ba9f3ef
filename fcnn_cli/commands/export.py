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

    Raw feature columns in (input 'features', float32, any number of rows), the labels in their
    own units out ('predictions'), or for classes their probabilities ('probabilities'); the
    feature, label and class names are in the model's metadata. onnxruntime checks the graph
    against the model before it is written. Needs pip install 'fcnn[onnx]'.

    \b
    Example:
      fcnn export runs/quakes/model.pt quakes.onnx
    """
    from fcnn_cli.network import checkpoint
    from fcnn_cli.network import export as onnx_export
    from fcnn_cli.results.runs import check_output

    check_output(output, [model], force)
    onnx_export.require()
    onnx_export.export(checkpoint.load(model, "cpu"), output)
    if output != "-":
        logging.getLogger("fcnn_cli").info("wrote %s", output)
