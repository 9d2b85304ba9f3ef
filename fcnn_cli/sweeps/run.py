"""Running a sweep: the combinations of a shard that are not finished, in groups that train
together, and what a failure leaves.

Combinations whose options differ in ``ensemble.MEMBER_OPTIONS`` alone (lr, weight decay,
init, dropout, patience, ema: they change neither the network's shape nor the step's kernels)
train together (:func:`fcnn_cli.sweeps.training.train_group`), at most MAX_MEMBERS members
(combinations × seeds) a pass; larger groups are split. A group the ensemble path refuses, or
that does not fit in memory, trains in smaller groups, then one combination at a time.

Combinations of other data options (a grid of ``where``, ``weight`` or ``define``) train one
set of data options after another, each set's tables read once
(:mod:`fcnn_cli.sweeps.datasets`); the groups that train together are made within each.

A combination that fails for its options (an FcnnError, such as a training that diverges at
once or options the network refuses, or a lack of memory; or data options of the grid that its
tables refuse) gets ``failed.json`` instead, and the sweep goes on; a rerun tries it again.
Anything else (a programming error, an interrupt) stops the sweep at once; a run cut short by
an interrupt is never saved, so nothing of it passes for finished. Each combination's run
directory is locked while it trains, so that a second sweep into the same directory skips it.
"""

import contextlib
import json
import logging
import time
from datetime import datetime, timezone
from pathlib import Path

from fcnn_cli.core.config import MAX_MEMBERS, Unsupported
from fcnn_cli.core.errors import FcnnError, Message, first_line
from fcnn_cli.sweeps import datasets
from fcnn_cli.sweeps.grid import combinations, said, seeds_of, short, train_config
from fcnn_cli.sweeps.leaderboard import leaderboard
from fcnn_cli.sweeps.plan import FAILED, FINISHED, data_files, is_finished, plan
from fcnn_cli.sweeps.records import FAILED_FILE, RESULT_FILE, NotAResult, described, read_json
from fcnn_cli.sweeps.training import train_combination, train_group

log = logging.getLogger(__name__)


def run(sweep, directory, shard_of=(1, 1), plots=False):
    """Train the combinations of this shard of the grid that ``directory`` does not hold
    finished (failed ones again), each run's plots drawn with ``plots`` (also those that a
    finished combination lacks); returns the leaderboard of all that ``directory`` holds.
    Progress goes to the log, a line as each combination starts and ends."""
    from fcnn_cli.core.fileio import writing

    directory = Path(directory)
    planned = plan(sweep, directory, shard_of)
    check_figures(sweep, planned)
    with writing(directory):
        directory.mkdir(parents=True, exist_ok=True)
    todo = [(c, key) for c, key, status in planned if status != FINISHED]
    log.info("%d combinations (shard %d/%d): %d finished already, %d to train (%d of them "
             "failed before)", len(planned), *shard_of, len(planned) - len(todo), len(todo),
             sum(status == FAILED for *_, status in planned))
    if not planned:
        log.warning("shard %d/%d of a grid of %d combinations holds none: nothing to train",
                    *shard_of, len(combinations(sweep.grid)))
    if plots:
        for _, key, status in planned:
            if status == FINISHED:
                _draw_runs(directory / key, missing=True)
    if todo:
        _train(sweep, directory, todo, plots)
    return leaderboard(directory)


def _train(sweep, directory, todo, plots):
    """Train ``todo``'s (combination, key) pairs: one set of data options after another
    (:func:`by_data`), the samples' files found and recorded once for all."""
    parts = by_data(sweep, todo)
    todo = [pair for _, part in parts for pair in part]  # in the order they train
    labels = {key: f"combination {i} of {len(todo)}: {key}"
              for i, (_, key) in enumerate(todo, 1)}
    recipes = any(datasets.recipe_of(options) is not None for options, _ in parts)
    samples = datasets.found_samples(sweep.data) if recipes else None
    files = data_files(sweep, digest=True, samples=samples)
    for options, part in parts:
        _train_part(sweep, directory, part, (options, files, samples), labels, plots)


def _train_part(sweep, directory, part, data, labels, plots):
    """Train the combinations of one set of data options on its tables, read once; ``data``:
    (the options, the sweep's data_files, its samples found)."""
    inputs = _read(sweep, directory, part, data, labels, plots)
    if inputs is None:
        return
    for group in groups(sweep, part):
        with _claimed(sweep, group, directory, inputs.files, labels) as free:
            if len(free) == 1:
                combination, key = free[0]
                _attempt(sweep, combination, inputs, directory / key, labels[key], plots)
            elif free:
                _attempt_group(sweep, free, inputs, directory, labels, plots)


def _read(sweep, directory, part, data, labels, plots):
    """The Inputs of a part's data options; None where the grid's data options fail to make
    its tables (a selection that keeps no row, a weight whose sum is not positive): then each
    of its combinations fails, and the sweep goes on. Data given once for all that fail stop
    the sweep: no combination could train."""
    options, files, samples = data
    varied = [k for k in sweep.grid if k in datasets.VARIED]
    if varied:
        log.info("reading the tables of %s", ", ".join(
            f"{k}={'(none)' if options.get(k) is None else short(options[k])}" for k in varied))
    try:
        return datasets.read(options, files, samples)
    except FcnnError as e:
        if not varied:
            raise
        error = e.with_traceback(None)
    with _claimed(sweep, part, directory, files, labels) as free:
        for combination, key in free:
            _finish(sweep, combination, directory / key, (labels[key], 0.0, files), error,
                    plots)
    return None


def check_figures(sweep, planned):
    """Refuse the sweep, before its plan is shown or anything is written, where one of the
    ``planned`` combinations to train (:func:`fcnn_cli.sweeps.plan.plan`'s) keeps its best
    epoch by a figure of classes (``best_by``) and its tables make a regression: every such
    combination would fail alike, and ``fcnn train`` refuses it too. The labels of their data
    options are read for it, and nothing else (:func:`fcnn_cli.sweeps.datasets.labels`); a
    grid's data options that its tables refuse are left to fail their combinations in
    training. A grid's value is named where the grid was given."""
    from fcnn_cli.engine import selection

    configs = {key: train_config(sweep, combination)[0]
               for combination, key, status in planned if status != FINISHED}
    todo = [(combination, key) for combination, key, _ in planned
            if key in configs and configs[key].best_by not in ("auto", "loss")]
    varied = any(k in datasets.VARIED for k in sweep.grid)
    for options, part in by_data(sweep, todo):
        try:
            labelled = datasets.labels(options)
        except FcnnError:
            if not varied:
                raise
            continue
        if labelled is None:
            continue
        table, targets = labelled
        for combination, key in part:
            try:
                selection.check_table(configs[key], table, targets)
            except FcnnError as e:
                if "best_by" not in combination:
                    raise
                if "task" in combination:  # the grid's other tasks may take the figure
                    raise sweep.named(e, combination) from None
                where, names = sweep.source(["best_by"])
                raise FcnnError(f"{where} {e}: leave {configs[key].best_by} out of best_by's "
                                "values", names) from None


def by_data(sweep, todo):
    """``todo``'s (combination, key) pairs in parts that share their data options, in order
    of each part's first: [(the data options, [(combination, key), …])]."""
    found = {}
    for combination, key in todo:
        options = datasets.data_options(sweep.data, combination)
        found.setdefault(said(options), (options, []))[1].append((combination, key))
    return list(found.values())


@contextlib.contextmanager
def _claimed(sweep, group, directory, files, labels):
    """Hold the lock of each run directory of ``group`` (:func:`fcnn_cli.results.runs.claim`) while
    they train, so that a second sweep of the same grid (a resubmitted job) trains none of
    them too; yields the (combination, key) pairs to train: not those whose lock another live
    process holds, nor those it finished meanwhile."""
    from fcnn_cli.results import runs

    with contextlib.ExitStack() as held:
        free = []
        for combination, key in group:
            one = held.enter_context(contextlib.ExitStack())  # closed early if not trained
            try:
                one.enter_context(runs.claim(directory / key, force=True))
            except runs.InProgress:
                log.info("%s: another process trains it; skipped", labels[key])
                continue
            try:
                done = is_finished(sweep, combination, directory / key, files)
            except NotAResult:
                done = False
            if done:
                one.close()
                log.info("%s: finished by another process meanwhile", labels[key])
                continue
            free.append((combination, key))
        yield free


def groups(sweep, todo):
    """``todo``'s (combination, key) pairs in groups that train together: those whose options
    differ in ``ensemble.MEMBER_OPTIONS`` alone, in order of their first member, each of at
    most ``MAX_MEMBERS`` members (combinations × seeds)."""
    from fcnn_cli.engine.ensemble import MEMBER_OPTIONS

    found = {}
    for combination, key in todo:
        options = {k: v for k, v in {**sweep.fixed, **combination}.items()
                   if k not in MEMBER_OPTIONS}
        found.setdefault(said(options), []).append((combination, key))
    most = MAX_MEMBERS // sweep.seeds
    return [group[i:i + most] for group in found.values() for i in range(0, len(group), most)]


def _attempt(sweep, combination, inputs, run_dir, label, plots):
    """Train one combination; one that fails for its options is recorded in ``failed.json``
    and the sweep goes on."""
    log.info("%s: training", label)
    start = time.perf_counter()
    try:
        train_combination(sweep, combination, inputs, run_dir)
        error = None
    except _failures() as e:
        error = e.with_traceback(None)  # its frames hold the failed run's tensors
    _finish(sweep, combination, run_dir, (label, time.perf_counter() - start, inputs.files),
            error, plots)


def _attempt_group(sweep, group, inputs, directory, labels, plots):
    """Train combinations together (:func:`train_group`), each that fails recorded as
    :func:`_attempt` records it. Where the options take no ensemble, or the group does not fit
    in memory, in smaller groups: those that agree in the options the autograd step takes one
    of for all members, then one by one. ``labels``: {key: its progress label}."""
    keys = [key for _, key in group]
    log.info("%s to %s: training together, as one vectorised pass", labels[keys[0]],
             labels[keys[-1]].partition(":")[0])
    start, retry = time.perf_counter(), None
    try:
        errors = train_group(sweep, group, inputs, directory)
    except (Unsupported, *_out_of_memory()) as e:
        retry = isinstance(e, Unsupported), first_line(e, 1000)
    except _failures() as e:
        errors = [e.with_traceback(None)] * len(group)
    if retry is not None:  # out of the handler, whose traceback held the failed pass's memory
        split, why = retry
        log.info("these %d combinations cannot train together (%s): in smaller groups",
                 len(group), why)
        _release_memory()
        for part in _parts(sweep, group, split):
            if len(part) == 1:
                combination, key = part[0]
                _attempt(sweep, combination, inputs, directory / key, labels[key], plots)
            else:
                _attempt_group(sweep, part, inputs, directory, labels, plots)
        return
    seconds = (time.perf_counter() - start) / len(group)
    for (combination, key), error in zip(group, errors):
        _finish(sweep, combination, directory / key, (labels[key], seconds, inputs.files),
                error, plots)


def _parts(sweep, group, split):
    """``group`` in the parts that agree in ``ensemble.KERNEL_OPTIONS`` where ``split`` and that
    makes more than one, else one combination a part."""
    from fcnn_cli.engine.ensemble import KERNEL_OPTIONS

    found = {}
    for combination, key in group:
        options = {**sweep.fixed, **combination}
        kernel = said({k: options.get(k) for k in KERNEL_OPTIONS})
        found.setdefault(kernel, []).append((combination, key))
    if split and len(found) > 1:
        return list(found.values())
    return [[pair] for pair in group]


def _finish(sweep, combination, run_dir, progress, error, plots):
    """How a combination ended: ``failed.json`` for an ``error``, else none left and its
    plots drawn with ``plots``; a line in the log either way. ``progress``: (label, seconds,
    the :func:`fcnn_cli.sweeps.plan.data_files` trained on)."""
    from fcnn_cli.core.fileio import writing

    label, seconds, files = progress
    if error is not None:
        _record_failure(sweep, combination, run_dir, error, (seconds, files))
        log.warning("%s: failed after %s: %s", label, _duration(seconds),
                    Message(first_line(error, 1000), getattr(error, "options", ())))
        return
    with writing(run_dir / FAILED_FILE):
        (run_dir / FAILED_FILE).unlink(missing_ok=True)
    log.info("%s: finished in %s", label, _duration(seconds))
    if plots:
        _draw_runs(run_dir)


def _failures():
    """What fails a combination and not the sweep: the user's options (FcnnError) and a lack of
    memory for them (a network too wide for the GPU or the CPU)."""
    return FcnnError, *_out_of_memory()


def _release_memory():
    """Hand a failed pass's memory back (to the GPU's allocator too) before smaller ones."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def _out_of_memory():
    """A lack of memory: found before training or when an allocation failed in it (the
    training engine says either as devices.OutOfMemory), or anywhere else."""
    import torch

    from fcnn_cli.machine.devices import OutOfMemory

    return MemoryError, torch.OutOfMemoryError, OutOfMemory


def _record_failure(sweep, combination, run_dir, error, spent):
    """``failed.json``; ``spent``: (seconds, the :func:`fcnn_cli.sweeps.plan.data_files`
    trained on)."""
    from fcnn_cli.core.fileio import write_text, writing

    seconds, files = spent
    config, _ = train_config(sweep, combination)
    record = {**described(sweep, combination, files), "seeds": seeds_of(sweep, config),
              "error": first_line(error, 1000), "kind": type(error).__name__,
              "error_options": list(getattr(error, "options", ())),
              "failed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "seconds": seconds}
    with writing(run_dir):
        run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / FAILED_FILE, json.dumps(record, indent=2, default=str) + "\n")


def _draw_runs(run_dir, missing=False):
    """The plots of each run a combination saved (one, or one per seed), as fcnn train draws
    them; the runs are saved already, so a failure here is only a warning. Once all are drawn,
    ``seeds.json`` says so (it is written before the plots, which a sweep stopped while
    drawing leaves incomplete); with ``missing`` only a combination whose plots it does not
    list as drawn, or that has none (removed since)."""
    from fcnn_cli.results.plots import plot_run
    from fcnn_cli.results.runs import PLOTS_DIR

    result = Path(run_dir) / RESULT_FILE
    if missing:
        if _plotted(result) and any(Path(run_dir).glob(f"**/{PLOTS_DIR}/*.png")):
            return
        log.info("%s: drawing the plots that an earlier sweep left out", run_dir)
    drawn = True
    for path in sorted(p.parent for p in Path(run_dir).glob("**/model.pt")):
        try:
            plot_run(path)
        except FcnnError as e:
            drawn = False
            log.warning("the run is saved, but its plots are not: %s; draw them with: "
                        "fcnn plot %s", e, path)
    if drawn and result.exists():
        from fcnn_cli.core.fileio import write_text

        saved = read_json(result)  # the sweep's own, written before the plots
        write_text(result, json.dumps({**saved, "plotted": True}, indent=2, default=str) + "\n")


def _plotted(result):
    try:
        return read_json(result).get("plotted") is True
    except (NotAResult, AttributeError):
        return False


def _duration(seconds):
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min {seconds % 60:02.0f} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"
