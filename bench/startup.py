"""A command from start to finish: where the seconds of a whole `fcnn train`, `fcnn predict` and
`fcnn evaluate` go, beside `python -c "import torch"` and the hand-written loop as a whole
process, in one run on one machine.

    python bench/startup.py [--quick] [--repeat N]

The case is the issue's: the earthquake table (`fcnn simulate earthquakes`, 20 000 rows, of
which 18 000 train), 20 epochs at batch 32, default options otherwise; predict and evaluate
score 1 000 new rows with its model. Each command runs as a whole process, best of --repeat;
once more under a profile hook that notes when the library enters and leaves a few functions
(this script run as `--phases`: nothing in fcnn changes), which splits the run into phases:
interpreter, imports, reading, import torch, preparation, first step, epochs, evaluation,
saving, printed tables, plots, exit. Prints the phases, the whole processes and the issue's
acceptance ratios, and (but with --quick) records them in bench/results/.
"""

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import time

EPOCHS, BATCH, ROWS, NEW_ROWS = 20, 32, 20_000, 1_000
TORCH_MARGIN = 0.5  # s: the allowance beside import torch (and the epochs)
TRAIN_FACTOR, LOOP_FACTOR = 1.25, 4.0  # the acceptance factors

# The phases of each command, each ending at a mark: (phase, module, function, event). The
# event "enter" or "return" is the first entry or the last return of the function; "first
# step" the first call of the step function that ``loop._step`` makes; "command" the end of
# the command in the process (what remains is the interpreter's exit).
PHASES = {
    "train": [("imports (click, fcnn, its command)", "fcnn_cli.commands.runjob", "_open_tables",
               "enter"),
              ("reading the table", "fcnn_cli.commands.runjob", "_open_tables", "return"),
              ("import torch", "fcnn_cli.machine.distributed", "join", "return"),
              ("preparation (columns, split, scaling, network)", "fcnn_cli.engine.loop",
               "_step", "first step enter"),
              ("first step", "fcnn_cli.engine.loop", "_step", "first step return"),
              ("the other steps, validation: the epochs", "fcnn_cli.commands.runjob",
               "_EpochPrinter.__call__", "return"),
              ("evaluation (the splits' reports, predictions)", "fcnn_cli.results.runs",
               "save_run", "enter"),
              ("saving the run", "fcnn_cli.results.runs", "save_run", "return"),
              ("printed tables", "fcnn_cli.commands.runjob", "_report_run", "return"),
              ("plots", "fcnn_cli.commands.runjob", "_draw_run", "return")],
    "predict": [("imports (click, fcnn, its command)", "fcnn_cli.network.checkpoint", "load",
                 "enter"),
                ("loading the model (import torch)", "fcnn_cli.network.checkpoint", "load",
                 "return")],
    "evaluate": [("imports (click, fcnn, its command)", "fcnn_cli.network.checkpoint", "load",
                  "enter"),
                 ("loading the model (import torch)", "fcnn_cli.network.checkpoint", "load",
                  "return"),
                 ("reading and scoring", "fcnn_cli.results.evaluation", "evaluate", "return")],
}
LAST = {"train": None, "predict": "reading, predicting, writing",
        "evaluate": "printed report"}  # the phase that ends with the command, after the marks


# --- in the measured process (--phases): the hook -------------------------------------------

def _phases_child(out, args):
    """Run ``fcnn ARGS`` in this process with the marks of PHASES noted, and write them to
    ``out`` as {mark: time}: each function is wrapped as soon as fcnn has imported its module
    (an import hook), never imported early, so that every import stays where fcnn makes it."""
    started = time.time()
    import builtins

    marks = {"start": started}
    pending = {(module, name) for _, module, name, _ in PHASES[args[0]]}
    real_import = builtins.__import__

    def watching(*a, **k):
        module = real_import(*a, **k)
        for target in [t for t in pending if _defined(*t)]:
            pending.discard(target)
            _wrap(*target, marks)
        return module

    builtins.__import__ = watching
    from fcnn_cli.commands import cli

    try:
        cli.main(args, prog_name="fcnn", standalone_mode=False)
    except SystemExit as e:
        if e.code:
            raise
    marks["command"] = time.time()
    builtins.__import__ = real_import
    with open(out, "w") as f:
        json.dump(marks, f)
    from fcnn_cli.commands import end_process

    end_process(0)  # as the fcnn command ends: its exit is measured, not the interpreter's


def _defined(module_name, name):
    """Whether the module is imported and defines ``name`` (a module is in sys.modules while
    it runs, before its functions are defined)."""
    return hasattr(sys.modules.get(module_name), name.split(".")[0])


STEP_MAKER = ("fcnn_cli.engine.loop", "_step")  # returns the step function of a run


def _wrap(module_name, name, marks):
    """Wrap ``name`` (a function, or Class.method) of the module: its first entry and last
    return noted in ``marks``, and for STEP_MAKER the first call of the step it makes."""
    owner, attribute = sys.modules[module_name], name
    if "." in name:
        cls, attribute = name.split(".")
        owner = getattr(owner, cls)
    function, key = getattr(owner, attribute), f"{module_name}:{name}"

    @functools.wraps(function)
    def noted(*a, **k):
        marks.setdefault(f"{key} enter", time.time())
        result = function(*a, **k)
        if (module_name, name) == STEP_MAKER:
            result = _first_noted(result, key, marks)
        marks[f"{key} return"] = time.time()
        return result
    setattr(owner, attribute, noted)


def _first_noted(step, key, marks):
    """``step``, the times of its first call noted (later calls pay one dict lookup)."""
    enter, done = f"{key} first step enter", f"{key} first step return"

    def first(*a, **k):
        if done in marks:
            return step(*a, **k)
        marks[enter] = time.time()
        result = step(*a, **k)
        marks[done] = time.time()
        return result
    return first


# --- in the benchmark's process --------------------------------------------------------------

def fcnn(*args):
    return [sys.executable, "-m", "fcnn_cli", *map(str, args)]


def phases(command, args, env=None):
    """The phases of one hooked run of ``fcnn COMMAND ARGS``: [(phase, seconds)], interpreter
    start and exit included; a phase whose mark never came (plots off) is left out, its time
    counted in the next."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "marks.json")
        spawned = time.time()
        done = subprocess.run([sys.executable, __file__, "--phases", out, command,
                               *map(str, args)], capture_output=True, env=env)
        ended = time.time()
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        with open(out) as f:
            marks = json.load(f)
    rows, last = [("interpreter start", marks["start"] - spawned)], marks["start"]
    for phase, module, name, event in PHASES[command]:
        at = marks.get(f"{module}:{name} {event}")
        if at is not None:
            rows.append((phase, at - last))
            last = at
    if LAST[command]:
        rows.append((LAST[command], marks["command"] - last))
        last = marks["command"]
    rows.append(("interpreter exit" if LAST[command] else "rest, interpreter exit",
                 ended - last))
    return rows


def best_phases(command, args, repeat, env=None):
    """The hooked run of least total time of ``repeat``."""
    runs = [phases(command, args, env) for _ in range(repeat)]
    return min(runs, key=lambda rows: sum(s for _, s in rows))


def train_run(args, env=None):
    """A whole process of ``fcnn train ARGS``: (wall time, the epochs' seconds as its
    history.csv gives them)."""
    from speed import wall

    seconds = wall(fcnn("train", *args), repeat=1, env=env)
    return seconds, _epochs_seconds(args[args.index("-o") + 1])


def in_turn(runs, repeat):
    """Each of ``runs`` ({name: () -> seconds, or (seconds, ...)}) ``repeat`` times, taking
    turns, so that a disturbance meets them all alike; the best (least seconds) of each."""
    def seconds(value):
        return value[0] if isinstance(value, tuple) else value

    best = {}
    for _ in range(repeat):
        for name, run in runs.items():
            value = run()
            if name not in best or seconds(value) < seconds(best[name]):
                best[name] = value
    return best


def _epochs_seconds(run_dir):
    import csv

    with open(os.path.join(run_dir, "history.csv")) as f:
        return sum(float(row["seconds"]) for row in csv.DictReader(f))


def handwritten_process(epochs, batch):
    """Wall time of the hand-written loop of bench/speed.py as a whole process: the same
    training rows as fcnn's (its split), ``epochs`` at ``batch``."""
    from speed import wall

    bench = os.path.dirname(os.path.abspath(__file__))
    code = (f"import sys; sys.path.insert(0, {bench!r}); import speed; "
            "from fcnn_cli.engine.prepare import split_indices; "
            "table, x, y = speed.quake_arrays(); "
            "rows = split_indices(len(x), 0.05, 0.05, 0)[0]; "
            f"speed.handwritten(x[rows], y[rows], {batch}, {epochs})")
    return wall([sys.executable, "-c", code], repeat=1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true",
                        help="2 epochs, one run of each: checks the script; no record")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best counts")
    parser.add_argument("--phases", nargs=argparse.REMAINDER,
                        help=argparse.SUPPRESS)  # OUT COMMAND ARGS: the measured process
    args = parser.parse_args()
    if args.phases:
        return _phases_child(args.phases[0], args.phases[1:])
    from rich.console import Console
    from rich.table import Table

    import record
    from speed import wall

    epochs, repeat = (2, 1) if args.quick else (EPOCHS, args.repeat)
    console = Console(width=110)
    with tempfile.TemporaryDirectory() as tmp:
        data, new = os.path.join(tmp, "quakes.parquet"), os.path.join(tmp, "new.csv")
        run_dir, plain = os.path.join(tmp, "run"), os.path.join(tmp, "plain")
        subprocess.run(fcnn("simulate", "earthquakes", "-n", ROWS, "-o", data), check=True,
                       capture_output=True)
        subprocess.run(fcnn("simulate", "earthquakes", "-n", NEW_ROWS, "--seed", 1, "-o", new),
                       check=True, capture_output=True)
        train_args = [data, "--epochs", epochs, "--batch-size", BATCH, "-o", run_dir, "--force"]
        no_plots = {**os.environ, "FCNN_PLOTS": "0"}
        one_cpu = {**os.environ, "OMP_NUM_THREADS": "1"}  # no CPU for a drawer: plots in-process
        model = os.path.join(run_dir, "model.pt")
        scoring = {"predict": [model, new, "-o", os.path.join(tmp, "p.csv"), "--force"],
                   "evaluate": [model, new]}
        subprocess.run(fcnn("train", *train_args), check=True, capture_output=True)  # the model
        measured = in_turn({
            "import torch": lambda: wall([sys.executable, "-c", "import torch"], repeat=1),
            "train": lambda: train_run(train_args),
            "train, plots off": lambda: train_run([*train_args[:-3], "-o", plain, "--force"],
                                                  no_plots),
            "train, one CPU": lambda: train_run(train_args, one_cpu),
            "hand-written loop": lambda: handwritten_process(epochs, BATCH),
            **{c: lambda c=c, a=a: wall(fcnn(c, *a), repeat=1) for c, a in scoring.items()},
        }, repeat)
        split = {"train": best_phases("train", train_args, repeat),
                 **{c: best_phases(c, a, repeat) for c, a in scoring.items()}}

    tables = []
    for command, rows in split.items():
        total = sum(s for _, s in rows)
        out = Table(title=f"fcnn {command}: phases of one hooked run ({total:.2f} s)")
        for column in ("phase", "s", "share"):
            out.add_column(column, justify="left" if column == "phase" else "right")
        for phase, seconds in rows:
            out.add_row(phase, f"{seconds:.3f}", f"{seconds / total:.0%}")
        console.print(out)
        tables.append(record.table(out.title, ("phase", "s"), rows))

    torch_s = measured["import torch"]
    train_s, epochs_s = measured["train"]
    whole = Table(title=f"whole processes, best of {repeat} ({epochs} epochs at batch {BATCH})")
    for column in ("process", "s"):
        whole.add_column(column, justify="left" if column == "process" else "right")
    rows = [("python -c 'import torch'", torch_s), ("fcnn train", train_s),
            ("  of which its epochs (history.csv)", epochs_s),
            ("fcnn train, plots off (FCNN_PLOTS=0)", measured["train, plots off"][0]),
            ("fcnn train, plots drawn by the command itself (OMP_NUM_THREADS=1: no drawer)",
             measured["train, one CPU"][0]),
            ("hand-written DataLoader loop (bench/speed.py)", measured["hand-written loop"]),
            (f"fcnn predict, {NEW_ROWS:,} rows", measured["predict"]),
            (f"fcnn evaluate, {NEW_ROWS:,} rows", measured["evaluate"])]
    for process, seconds in rows:
        whole.add_row(process, f"{seconds:.3f}")
    console.print(whole)
    tables.append(record.table(whole.title, ("process", "s"), rows))

    accept = Table(title="the issue's acceptance (ratios of this run)")
    for column in ("criterion", "ratio", "limit", "met"):
        accept.add_column(column, justify="left" if column == "criterion" else "right")
    checks = [("train / (import torch + its epochs + 0.5 s)",
               train_s / (torch_s + epochs_s + TORCH_MARGIN), TRAIN_FACTOR, "≤"),
              ("hand-written loop / train, whole processes",
               measured["hand-written loop"] / train_s, LOOP_FACTOR, "≥"),
              (f"predict of {NEW_ROWS:,} rows / (import torch + 0.5 s)",
               measured["predict"] / (torch_s + TORCH_MARGIN), 1.0, "≤")]
    for criterion, ratio, limit, way in checks:
        met = ratio <= limit if way == "≤" else ratio >= limit
        accept.add_row(criterion, f"{ratio:.2f}", f"{way} {limit:g}", "yes" if met else "NO")
    console.print(accept)
    tables.append(record.table(accept.title, ("criterion", "ratio", "limit"),
                               [(c, r, f"{w} {lim:g}") for c, r, lim, w in checks]))
    if not args.quick:  # a quick run checks the script; its figures are no record
        record.write("startup", tables)


if __name__ == "__main__":
    main()
