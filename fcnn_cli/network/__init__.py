"""A trained network as a thing to keep and apply: the ``nn.Module`` (``model``; its features'
``embedding``), what it is asked
(``tasks``: regression, classification, Gaussian heads, and the ``metrics`` each task reports,
its uncertainties scored by ``calibration``; a binary score's figures of merit by ``roc``,
``merit`` and ``significance``; the ``overtraining`` check), fingerprints of its rows
(``digest``), the checkpoint (``checkpoint``; ``torchfiles`` reads such files as untrusted
input), predictions of a table (``predictor``; a k-fold model's rows by its ``foldrule``),
ONNX (``export``; what its graph takes and the rows it is checked on, ``onnxinputs``;
definitions as graph operations, ``onnxexpr``) and a checkpoint described (``modelinfo``);
baselines beside it (``baseline``: the interface and file; ``gbdt``, boosted trees kept as a
``forest`` of node arrays). May use ``data``, ``machine`` and ``core``; never trains a
network."""
