"""What a run leaves and shows: run directories (``runs``), metrics in bins of a variable
(``binned``), a model scored on a table (``evaluation``), plots (``plots``), the HTML page
(``page``), the tables printed on the terminal (``report``) and readable units (``units``).
May use ``network``, ``data``, ``machine`` and ``core``; never trains."""
