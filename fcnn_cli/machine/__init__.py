"""What a process runs on: CPU threads and GPUs, products' precision and memory (``devices``),
the processes of a torchrun job (``distributed``), and Ctrl-C/SIGTERM (``signals``).
May use ``core`` alone."""
