"""Training: a table made ready (``prepare``, or ``stream`` piece by piece), the network's
state and optimiser (``state``), the steps (``fastpath`` without autograd, ``funcstep`` for
ensembles through autograd, ``graphs`` on a GPU), the weight average (``averaging``), the
epochs (``loop``), ensembles and cohorts in one pass (``ensemble``), the diagnostics of deep
networks (``diagnostics``), and ``train.fit``, which puts them in order.
May use ``results``, ``network``, ``data``, ``machine`` and ``core``."""
