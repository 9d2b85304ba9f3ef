"""The shared vocabulary, below every other wing: the errors a user is shown (``errors``), every
option of a run as a checked dataclass field (``config``) and its TOML files (``configfile``),
files read and written safely (``fileio``), and a console that never stops the work
(``console``). Imports nothing of fcnn's but itself; no torch."""
