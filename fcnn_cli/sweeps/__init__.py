"""``fcnn sweep`` as a library: a grid of options and its combinations' keys (``grid``), the
data each combination trains on, through a recipe as ``fcnn train`` reads it (``datasets``),
what a sweep keeps of each combination and reads back (``records``: ``seeds.json``,
``failed.json``), the plan a shard trains and the checks before anything is written
(``plan``), running the plan with its failures and fallbacks (``run``), training a combination
over its seeds or a group of them as one vectorised pass (``training``), and the leaderboard
(``leaderboard``). May use every wing but ``commands``."""
