"""Tables as they come: reading and writing CSV and Parquet in blocks of rows (``tables``), ROOT,
HDF5 and FITS (``formats``), which columns are labels and features and their numbers
(``columns``), scalers (``preprocess``), and the simulated data sets (``simulate``).
May use ``machine`` and ``core``; knows nothing of networks."""
