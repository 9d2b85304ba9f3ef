"""The shared vocabulary, below every other wing: the errors a user is shown (``errors``), every
option of a run as a checked dataclass field (``config``) and its TOML files (``configfile``),
files read and written safely (``fileio``), a console that never stops the work
(``console``), and Python's collector paused while a command imports its libraries
(``collector``). Imports nothing of fcnn's but itself; no torch."""
