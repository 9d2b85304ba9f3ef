"""Tables as they come: reading them whole or in blocks of rows (``tables``, CSV text in
``csvfiles``), or piece by piece when larger than memory (``sources``), writing them
(``writer``) with fcnn's label metadata (``metadata``), ROOT, HDF5 and FITS (``formats``), which
columns are labels and features and their numbers (``columns``), categorical features as
one-hot inputs (``categories``), missing values filled
(``missing``), scalers (``preprocess``), and the simulated data sets (``simulate``).
May use ``machine`` and ``core``; knows nothing of networks."""
