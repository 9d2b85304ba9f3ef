"""Training: a table made ready (``prepare``, or ``stream`` piece by piece, its rows mixed by
``shuffle``; its event weights in ``eventweights``), the network's state and optimiser
(``state``; torch's fused Adam and SGD without the compiler stack in ``optimizer``), the steps
(``fastpath`` without autograd, ``funcstep`` for ensembles through autograd, ``graphs`` on a
GPU), the weight average (``averaging``), the epochs (``loop``), ensembles and cohorts in one
pass (``ensemble``, each member's own rates and average in ``memberwise``; k-fold's networks,
each on its own rows, in ``folds``), the diagnostics of deep networks (``diagnostics``), and
``train.fit``, which puts them in order.
May use ``results``, ``network``, ``data``, ``machine`` and ``core``."""
