"""Training a network on a table: the parts tied together.

:mod:`~fcnn_cli.engine.prepare` makes the table ready (columns, task, split, scaler),
:mod:`~fcnn_cli.engine.state` holds the network, optimiser and progress,
:mod:`~fcnn_cli.engine.loop` runs the epochs, and :func:`fit` here puts them in order and reports
on the weights it keeps.
"""

import logging
import sys
from dataclasses import asdict, dataclass, field, replace

from fcnn_cli.machine import distributed
from fcnn_cli.engine import figures, folds, loop, selection, state as training_state
from fcnn_cli.core.config import TrainConfig
from fcnn_cli.machine.devices import (ThreadChooser, describe, effective_precision,
                                      memory_errors, resolve_device, step_work)
from fcnn_cli.core.errors import DataChanged, FcnnError
from fcnn_cli.engine.prepare import SPLITS, Prepared, prepare
from fcnn_cli.data.tables import Table
from fcnn_cli.network import embedding

__all__ = ["TrainConfig", "TrainResult", "fit", "fit_cohorts"]

log = logging.getLogger(__name__)

# Dropout unless asked otherwise, by task, as measured: on the default galaxies 0.1 lifts the
# accuracy on 10 000 fresh images from 99.1 % to 99.5 %; on the default earthquakes even 0.02
# makes the mean distance ten times worse (exact labels leave nothing to regularise away).
DEFAULT_DROPOUT = {"regress": 0.0, "classify": 0.1}


@dataclass
class TrainResult:
    predictor: object
    config: TrainConfig
    history: list  # one dict per epoch
    metrics: dict  # "train", "val" and (if there are test rows) "test" reports
    sizes: dict = field(default_factory=dict)  # rows in each split
    stopped: str = "completed"  # or why training ended early
    diagnostics: list = field(default_factory=list)  # rows from diagnostics.Probe
    warnings: list = field(default_factory=list)  # what the diagnostics found worrying
    resume_state: dict | None = None  # set when interrupted: what `fit(resume=…)` continues
    lost: bool = False  # stopped because another process of the job failed
    sample: object = None  # a Table of held-out rows with their predictions, for the plots
    members: list = field(default_factory=list)  # an ensemble's: each member's metrics
    changed: bool = False  # stopped because a streamed file changed: no metrics, no sample
    baselines: dict = field(default_factory=dict)  # name: fitted baseline (engine.baselines)
    overtraining: dict | None = None  # the overtraining check (engine.overtrain)
    correlations: dict | None = None  # the training features' correlation matrices

    @property
    def interrupted(self):
        return self.resume_state is not None


def fit(table, config=None, net=None, targets=None, features=None, val_table=None,
        test_table=None, on_epoch=None, resume=None, world=None, stop=None, consume=False,
        weight=None, categorical=None):
    """Train a network on ``table`` (or ``config.ensemble`` members; left None, a small table's
    members are chosen: :func:`_members`); ``net`` holds NetConfig options besides the sizes (a
    missing or None ``dropout`` is the task's default).

    ``table`` is a :class:`~fcnn_cli.data.tables.Table` in memory, or a source streamed piece by
    piece (:func:`fcnn_cli.data.sources.open_source`); then ``val_table`` and ``test_table`` are
    :class:`fcnn_cli.data.sources.FileChunks`. They replace the validation and test splits.
    ``on_epoch`` is called with each history row (and first, if it has a ``plan`` method, with
    the number of epochs, which ``config.epochs`` None takes from the table's size). A
    KeyboardInterrupt (Ctrl-C; the command line turns SIGTERM into one) ends training after
    the last complete epoch: the result holds
    the best weights so far and ``resume_state``, which ``resume=`` takes to continue exactly
    where the run stopped. So does a streamed file that changes after an epoch is complete
    (:class:`~fcnn_cli.core.errors.DataChanged`; the result's ``changed`` is then set, and it holds
    no metrics), also while the final metrics are measured: resuming then only measures.

    ``stop`` (a :class:`fcnn_cli.machine.signals.Interrupts`) lets signals stop the loop at a
    step's end instead of wherever they arrive; ``world`` (from
    :func:`fcnn_cli.machine.distributed.join`) trains in several processes, each taking its part
    of every minibatch (see :func:`fcnn_cli.engine.loop.run`). ``weight`` names the column of
    each row's event weight, which the loss, the validation and every metric then take
    (:mod:`fcnn_cli.engine.eventweights`). With ``config.folds`` of 2 or more it trains k-fold's
    networks, every row scored out of fold (:mod:`fcnn_cli.engine.folds`). With
    ``config.baseline`` a baseline is fitted and reported beside the network
    (:mod:`fcnn_cli.engine.baselines`: ``result.baselines``, ``metrics["baselines"]``).
    ``categorical`` names feature columns to one-hot encode (:mod:`fcnn_cli.data.categories`).
    The options are taken as given: what ``fcnn train`` takes of a table's metadata where its
    options leave it open (:mod:`fcnn_cli.commands.tabledefaults`: an earthquake table's picks
    after the earliest, wider network, ``nan="fill"``) is the caller's to give.
    """
    from fcnn_cli.engine import baselines

    config = config or TrainConfig()
    _refuse_figures(config, weight, val_table)
    baselines.refuse(config)
    if isinstance(table, Table):
        data = prepare(table, config, targets, features, val_table, test_table, consume, weight,
                       categorical, folds.stratifies(resume))
    else:
        from fcnn_cli.engine import stream

        data = stream.prepare(table, config, targets, features, val_table, test_table, weight,
                              categorical)
    _check_figures(data, config)
    world = world or distributed.World()
    choose_members = config.leaves_members(_training_rows(config, data))
    config = _planned(config, data, on_epoch)
    name, extra = table.name, getattr(table, "extra", {})
    del table, val_table, test_table  # the prepared rows are all training needs: the caller's
    # tables, if the caller drops them too (as the command line does), are freed now
    _release_arrow_memory()
    baseline = baselines.check(config, data, extra)  # before training: no epoch spent on a refusal
    shape = training_state.net_config(data, net, DEFAULT_DROPOUT[data.kind])
    device = _device(config, shape, data.sizes["train"], world)
    if choose_members:
        config = _members(config, data, world, shape, device)
    precision = effective_precision(config.precision, device)
    if precision != config.precision:
        log.warning("precision %s applies to GPUs only: training on the CPU computes in %s",
                    config.precision, precision)
    _check_batchnorm(shape, config, world)
    if shape.levels and config.fast:
        log.info("the embedding of the categorical feature(s) of many levels trains through "
                 "autograd: the autograd-free step (--fast) does not take it")
    training_state.check_fits(shape, config, device, _networks_of(config),
                              min(-(-config.batch_size // world.size), data.sizes["train"]))
    fit_one = _fit_folds if config.folds > 1 else \
        _fit_ensemble if config.ensemble > 1 else _fit_single
    with memory_errors(device):
        result = fit_one(data, config, shape, device, precision, (name, extra),
                         (world, resume, on_epoch, stop))
    return _checked(baselines.beside(result, baseline, data, config), data)


def _planned(config, data, on_epoch=None):
    """``config`` with what it left to the data: its number of epochs
    (:meth:`TrainConfig.planned`), told to ``on_epoch`` where it has a ``plan`` method (the
    command line's progress), the figure that picks the best epoch
    (:func:`fcnn_cli.engine.selection.resolved`), and one network where its members are left
    to it (:func:`_members` may choose more)."""
    config = replace(config.planned(_training_rows(config, data)),
                     best_by=selection.resolved(config.best_by, data.kind),
                     ensemble=config.ensemble or 1)
    if hasattr(on_epoch, "plan"):
        on_epoch.plan(config.epochs)
    return config


def _training_rows(config, data):
    """The rows each network trains on (k-fold: the other folds')."""
    rows = data.sizes["train"]
    return rows * (config.folds - 1) // config.folds if config.folds > 1 else rows


def _members(config, data, world, shape, device):
    """``config`` (one network) with SMALL_MEMBERS members where the run can train them: not
    where an ensemble is refused (k-fold, diagnostics, a streamed table, several processes),
    nor with the plateau schedule (members trained through autograd share one rate, and
    which step trains is known only later), nor where they would not fit in memory."""
    from fcnn_cli.core.config import SMALL_MEMBERS, Unsupported
    from fcnn_cli.engine import ensemble
    from fcnn_cli.machine.devices import OutOfMemory

    try:
        members = replace(config, ensemble=SMALL_MEMBERS)  # checked: refuse_in_ensemble
        ensemble.refuse_unsupported(members, world, not isinstance(data, Prepared))
        training_state.check_fits(shape, members, device, SMALL_MEMBERS,
                                  min(config.batch_size, data.sizes["train"]))
    except (Unsupported, OutOfMemory):
        return config
    return config if config.schedule == "plateau" else members


def _fit_single(data, config, shape, device, precision, source, run):
    """:func:`fit` for one network: the training state, the epochs (:mod:`fcnn_cli.engine.loop`) and
    the report on the weights kept."""
    (name, extra), (world, resume, on_epoch, stop) = source, run
    state = training_state.TrainingState(shape, config, data.task, device)
    rows = data.on(device)
    probe = _probe(state, data, rows) if config.diagnostics else None
    if resume is None:
        state.diagnostics = probe.measure(0) if probe else []
    else:
        _check_resumable(resume, data, name, config)
        state.load_state_dict(resume)
        log.info("resuming after epoch %d of %d", state.epoch, config.epochs)
    start, ended = state.epoch, (resume or {}).get("ended")
    outcome = loop.Outcome(ended) if ended else loop.run(state, data, rows, on_epoch, probe,
                                                         world, stop)
    if outcome.changed and state.epoch == start:
        raise outcome.changed  # no epoch complete since the start: nothing new to keep
    if state.best_weights is None:
        if outcome.lost:
            raise FcnnError(outcome.stopped)
        if outcome.resume_state is not None:
            raise KeyboardInterrupt
        raise FcnnError(f"training diverged at once ({outcome.stopped}); nothing worth keeping")
    if outcome.diverged:
        log.warning("training stopped: %s; keeping the best weights so far", outcome.stopped)
    state.model.load_state_dict(state.best_weights)
    state.model.eval()
    predictor = _predictor(state.model, data, precision, config, whole=True)
    metrics, sample, outcome = _measure(predictor, data, extra, world, state, outcome)
    predictor.info = {"train_config": asdict(config), "metrics": metrics,
                      "best_epoch": state.best_epoch, **describe(device),
                      "precision": precision, "rows_sha256": data.rows_digest}
    return TrainResult(predictor, config, state.history, metrics, data.sizes, outcome.stopped,
                       state.diagnostics, _warnings(state.diagnostics), outcome.resume_state,
                       outcome.lost, sample, changed=outcome.changed is not None)


def _predictor(net, data, precision, config, whole=False, task=None):
    """The Predictor of a trained network (``whole``: with the features' training range, as the
    checkpoint keeps it; ``task``: instead of the data's). A run given ``threads`` measures on
    that many too, so that its metrics are the same bit for bit whatever the load, as its
    weights are."""
    from fcnn_cli.network.predictor import Predictor

    extra = {"feature_range": data.feature_range()} if whole else {}
    predictor = Predictor(net, data.features, data.x_scaler, task or data.task, data.units,
                          precision=precision, filler=data.filler, categories=data.categories,
                          **extra)
    if config.threads:
        predictor.threads = ThreadChooser.fixed(config.threads)
    return predictor


def _measure(predictor, data, extra, world, state, outcome):
    """The metrics of each split and the sample of held-out rows for the plots, and the
    outcome. The first process alone measures: the others would compute the same for
    nothing. Nothing is measured on data that changed; if they change now, the outcome holds
    the state as training ended, which a resumed run only measures."""
    if outcome.changed or not world.is_main:
        return {}, None, outcome
    try:
        _working_point(predictor, data, state.config)
        metrics = {split: _report(predictor, data, split, state.config) for split in SPLITS
                   if data.sizes[split]}
        return metrics, _sample(predictor, data, extra, state.config.seed), outcome
    except DataChanged as e:
        ended = {**loop.snapshot(state, data), "ended": outcome.stopped}
        return {}, None, loop.Outcome(f"stopped after training had ended: {e}", ended,
                                      changed=e)
    except Exception as e:  # a fault in a report must not lose the network trained
        log.warning("the final reports failed (%s: %s): the network is saved without its "
                    "metrics; fcnn evaluate measures it", type(e).__name__, e,
                    exc_info=log.isEnabledFor(logging.DEBUG))
        return {}, None, outcome


def _fit_ensemble(data, config, shape, device, precision, source, run):
    """:func:`fit` for ``config.ensemble`` members trained together
    (:mod:`fcnn_cli.engine.ensemble`). The predictor's ``best_epoch`` is the members' latest,
    ``best_epochs`` each one's."""
    from fcnn_cli.engine import ensemble

    (name, extra), (world, resume, on_epoch, stop) = source, run
    ensemble.refuse_unsupported(config, world, not isinstance(data, Prepared))
    if resume is not None:
        _check_resumable(resume, data, name, config)
    trained = ensemble.train(data, config, shape, device, on_epoch, stop, resume)
    return _ensemble_result(trained, data, config, device, precision, extra)


def _fit_folds(data, config, shape, device, precision, source, run):
    """:func:`fit` for k-fold training (:mod:`fcnn_cli.engine.folds`): the folds' networks as
    the members of one ensemble pass, each on its own rows; every row scored out of fold."""
    from fcnn_cli.engine import ensemble
    from fcnn_cli.core.config import Unsupported

    (name, extra), (world, resume, on_epoch, stop) = source, run
    folds.refuse_processes(config, world)
    if resume is not None:
        _check_resumable(resume, data, name, config)
    try:
        trained = ensemble.train(data, folds.as_ensemble(config), shape, device, on_epoch,
                                 stop, resume)
    except Unsupported as e:  # said of the ensemble the folds train as: said of the folds
        raise FcnnError(f"folds={config.folds}: {str(e).partition(': ')[2]}", ("folds",)) \
            from None
    if trained.stopped.startswith(ensemble.DIVERGED):
        log.warning("training stopped: %s; keeping the best weights so far", trained.stopped)
    predictor = _predictor(trained.net, data, precision, config, whole=True)
    # The rule the predictor applies, k, by and seed, which is all older fcnn reads in a
    # checkpoint: it scores a table by position by the mean, never dealing rows to folds, so
    # the classes they were stratified by are the run's record alone (metrics.json, state.pt).
    predictor.folds = replace(data.folds.rule, strata=None)
    merit = None if config.working_point is None else \
        folds.score(predictor, data, config, choosing=True).metrics["val"]["merit"]  # out of fold
    predictor.task = figures.chosen(data.task, config, merit)
    scores = folds.score(predictor, data, config)
    test = {"test": _report(predictor, data, "test", config)} if data.sizes["test"] else {}
    metrics = {"train": scores.metrics["train"], "val": scores.metrics["val"], **test,
               "folds": scores.metrics["folds"]}
    predictor.info = {"train_config": asdict(config), "metrics": metrics,
                      "best_epoch": max(trained.best_epochs), "best_epochs": trained.best_epochs,
                      **describe(device), "precision": precision,
                      "rows_sha256": data.rows_digest}
    sample = _sample(predictor, data, extra, config.seed) if test else \
        _out_of_fold_sample(scores.sample, data, extra)
    return TrainResult(predictor, config, trained.history, metrics, data.sizes,
                       trained.stopped, resume_state=trained.resume_state, sample=sample)


def _out_of_fold_sample(sample, data, extra):
    """The plots' sample of out-of-fold predictions, as :func:`_sample` gives one."""
    from fcnn_cli.results.evaluation import sample_metadata
    from fcnn_cli.data.tables import Table

    meta = sample_metadata(data.task, data.units, "val", extra=extra)
    return Table(sample.frame(), meta["targets"], meta["units"], "val",
                 extra={k: v for k, v in meta.items() if k not in ("targets", "units")})


def fit_cohorts(table, cohorts, targets=None, features=None, val_table=None, test_table=None,
                weight=None, categorical=None):
    """Train several ensembles of one shape in one vectorised pass (as a sweep does), on a
    table in memory: ``cohorts`` is a list of (TrainConfig, net options) that differ in
    :data:`fcnn_cli.engine.ensemble.MEMBER_OPTIONS` and ``ensemble`` alone. Returns for each its
    TrainResult, as :func:`fit` gives it (one of a single member is a single network's), or
    the FcnnError of one that diverged at once. Raises :class:`fcnn_cli.core.config.Unsupported`
    where the options take no ensemble, and KeyboardInterrupt at an interrupt (what was cut
    short is not reported). ``weight``: as :func:`fit` takes it."""
    from fcnn_cli.engine import ensemble
    from fcnn_cli.core.config import NetConfig, Unsupported, refuse_in_ensemble

    # A pass's members are its cohorts' (a sweep's seeds), none of them left to the table's size
    cohorts = [(replace(config, ensemble=config.ensemble or 1), net) for config, net in cohorts]
    members = sum(config.ensemble for config, _ in cohorts)
    for config, _ in cohorts:
        refuse_in_ensemble(config, members)
        if config.folds > 1:  # a pass of its own (fit), whose members the folds are
            raise Unsupported(f"folds={config.folds}: the folds' networks train as a pass of "
                              "their own; train such options alone", ("folds",))
        if config.baseline:  # fitted by fit beside the one network it is compared with
            raise Unsupported(f"baseline={config.baseline}: a baseline is fitted beside each "
                              "run on its own; train such options alone", ("baseline",))
    # Shapes from the options alone, before the data are read; dropout (left out: the task's
    # default, not known yet) is a member option, which the check does not compare.
    ensemble.check_cohorts([ensemble.Cohort(config, NetConfig(
        n_in=1, n_out=1, **{**(net or {}), "dropout": 0.0})) for config, net in cohorts])
    config = cohorts[0][0]
    for each, _ in cohorts:
        _refuse_figures(each, weight, val_table)
    data = prepare(table, config, targets, features, val_table, test_table, weight=weight,
                   categorical=categorical)
    for each, _ in cohorts:
        _check_figures(data, each)
    cohorts = [(_planned(each, data), net) for each, net in cohorts]
    config = cohorts[0][0]
    extra = getattr(table, "extra", {})
    del table, val_table, test_table
    shapes = [training_state.net_config(data, net, DEFAULT_DROPOUT[data.kind])
              for _, net in cohorts]
    world = distributed.World()
    _check_batchnorm(shapes[0], config, world)
    device = _device(config, shapes[0], data.sizes["train"], world)
    precision = effective_precision(config.precision, device)
    training_state.check_fits(shapes[0], config, device, members,
                              min(config.batch_size, data.sizes["train"]))
    with memory_errors(device):
        trained = ensemble.train_cohorts(
            data, [ensemble.Cohort(c, shape) for (c, _), shape in zip(cohorts, shapes)], device)
        if any(getattr(t, "resume_state", None) is not None for t in trained):
            raise KeyboardInterrupt
        return [t if isinstance(t, FcnnError) else
                _checked(_ensemble_result(t, data, c, device, precision, extra), data)
                for t, (c, _) in zip(trained, cohorts)]


def _checked(result, data):
    """The result with its overtraining check and its inputs' correlations, where its
    metrics were measured (:mod:`fcnn_cli.engine.overtrain`)."""
    if not result.metrics:
        return result
    from fcnn_cli.engine import overtrain

    try:
        return overtrain.attach(result, data)
    except DataChanged as e:  # the run is complete: only its check is lost
        log.warning("no overtraining check: %s", e)
        return result


def _check_batchnorm(shape, config, world):
    if shape.batchnorm and config.batch_size // world.size < 2:
        raise FcnnError(f"batch normalisation needs at least 2 rows of every minibatch in each "
                        f"of the {world.size} process(es); batch_size {config.batch_size} "
                        "gives fewer", ("batch_size",))


def _ensemble_result(trained, data, config, device, precision, extra):
    """The TrainResult of trained members (of one alone: a single network's)."""
    from fcnn_cli.engine.ensemble import DIVERGED

    if trained.stopped.startswith(DIVERGED):
        log.warning("training stopped: %s; keeping the best weights so far", trained.stopped)
    alone = len(trained.net) == 1
    net = trained.net.members[0] if alone else trained.net
    predictor = _predictor(net, data, precision, config, whole=True)
    _working_point(predictor, data, config)
    metrics = {split: _report(predictor, data, split, config) for split in SPLITS
               if data.sizes[split]}
    epochs = {} if alone else {"best_epochs": trained.best_epochs}
    predictor.info = {"train_config": asdict(config), "metrics": metrics,
                      "best_epoch": max(trained.best_epochs), **epochs, **describe(device),
                      "precision": precision, "rows_sha256": data.rows_digest}
    sample = _sample(predictor, data, extra, config.seed)
    members = [] if alone else [
        {split: _report(_predictor(member, data, precision, config, task=predictor.task), data,
                        split, config)
         for split in ("val", "test") if data.sizes[split]}
        for member in trained.net.members]
    return TrainResult(predictor, config, trained.history, metrics, data.sizes,
                       trained.stopped, resume_state=trained.resume_state, sample=sample,
                       members=members)


def _check_resumable(resume, data, name, config):
    """Refuse a saved state of other data, or of another number of networks, before loading."""
    if resume.get("digest") != data.digest:
        what = "rows, columns, options or folds" if config.folds > 1 else \
            "rows, columns or options"
        raise FcnnError(f"{name}: not the data this run started with (its {what} differ); "
                        "cannot resume")
    saved = resume.get("ensemble", 1)
    if saved != _networks_of(config):
        raise FcnnError(f"the saved training state is of {_networks(saved)}, not of "
                        f"{_networks(_networks_of(config))}; cannot resume")


def _networks_of(config):
    """The networks a run trains: an ensemble's members, or one a fold (never both)."""
    return max(config.ensemble, config.folds)


def _networks(count):
    return "a single network" if count == 1 else f"an ensemble of {count!r} members"


def _sample(predictor, data, extra, seed):
    """Rows of the test split (else the validation split) with their predictions, at most
    ``evaluation.PLOT_ROWS``, and what the plots need to know of them."""
    from fcnn_cli.results.evaluation import Sample

    split = "test" if data.sizes["test"] else "val"
    sample = Sample(predictor.task, seed=seed)
    step = predictor.chunk_rows
    for x, truth, weight in data.chunks(split):
        for start in range(0, len(x), step):
            rows = slice(start, start + step)
            sample.add(None, truth[rows], predictor.outputs(x[rows]),
                       None if weight is None else weight[rows])
    return sample.table(data.units, split, extra=extra, name=split)


def _device(config, shape, rows, world):
    """The device to train on: as asked, or for "auto" the faster one for this network, batch
    and number of steps (:func:`fcnn_cli.machine.devices.prefers_cuda`). Several processes take the
    device that joining their group gave them."""
    if world.distributed:
        return distributed.join(config.device)[1]
    steps = config.epochs * -(-rows // config.batch_size)
    work = step_work(min(config.batch_size, rows), embedding.products(shape))
    return resolve_device(config.device, (work, steps))


def _release_arrow_memory():
    """Hand the memory of freed Arrow buffers (a table read, then converted) back to the
    system: pyarrow's allocator keeps it otherwise, and training would run beside it."""
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None:
        pyarrow.default_memory_pool().release_unused()


def _report(predictor, data, name, config, asked=None):
    """The metrics of split ``name`` by ``predictor`` (at its task's working point, if any),
    with the figures of merit ``asked``, else those the run asks of the split."""
    asked = asked or figures.at_cut(data, config, name, predictor.task)
    report = predictor.task.metrics(data.units, sample=data.distance_sample, figures=asked)
    for x, truth, weight in data.chunks(name):
        predictor.add_to(report, x, truth, data.scaled(name), weight=weight)
    return report.report()


def _refuse_figures(config, weight, val_table):
    figures.refuse_early(config, weight is not None,
                         val_table is not None or config.val_frac > 0 or config.folds > 1)


def _check_figures(data, config):
    """Before the first epoch: the figures' options against the task the data made."""
    figures.check(data.task, config)
    if config.working_point is not None and not data.sizes["val"]:
        figures.refuse_early(config, True, False)


def _working_point(predictor, data, config):
    """The predictor's task with the run's signal class and the working point found on the
    validation split, which every final report then cuts at."""
    merit = None
    if config.working_point is not None:
        merit = _report(predictor, data, "val", config,
                        figures.asking(data, config, "val"))["merit"]
    predictor.task = figures.chosen(data.task, config, merit)


def _probe(state, data, rows):
    from fcnn_cli.engine.diagnostics import Probe

    return Probe(state.model, *rows.sample(loop.DIAGNOSTIC_ROWS), data.task.loss)


def _warnings(diagnostics):
    if not diagnostics:
        return []
    from fcnn_cli.engine.diagnostics import warnings

    found = warnings(diagnostics)
    for message in found:
        log.warning("%s", message)
    return found
