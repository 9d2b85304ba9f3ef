"""The command line: a thin layer of Click over the library. May use every wing."""
