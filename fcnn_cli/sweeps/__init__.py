"""``fcnn sweep`` as a library: grids of options over seeds, the plan a shard trains, running
the combinations (same-shape ones as one vectorised pass) and recording failures, and the
leaderboard. May use every wing but ``commands``."""
