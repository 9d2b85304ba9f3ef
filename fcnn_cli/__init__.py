"""fcnn: fully-connected neural networks for tabular physics data.

The command line (``fcnn``) is a thin layer over these modules, which work from Python alone::

    from fcnn_cli.data import simulate
    from fcnn_cli.engine import train
    from fcnn_cli.network import checkpoint
    table = simulate.earthquakes(n=2000, seed=1)
    result = train.fit(table, train.TrainConfig(epochs=5))
    checkpoint.save(result.predictor, "model.pt")
"""

__version__ = "0.1.0"
