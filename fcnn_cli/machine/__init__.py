"""What a process runs on: CPU threads and GPUs, products' precision and memory (``devices``),
the processes of a torchrun job (``distributed``), Ctrl-C/SIGTERM (``signals``), and Python's
collector while a command loads its libraries (``collector``).
May use ``core`` alone."""
