"""Training one combination of a sweep over its seeds, or a group of them as one pass, and
saving each as ``fcnn train`` would, with its ``seeds.json``.

Each combination trains ``seeds`` times, with seeds ``seed``, ``seed + 1``, …: where the
ensemble path takes the options, as the members of one ensemble trained in one vectorised pass
(member k is seed + k; all members share the split of ``seed``) and saved as one run (its
checkpoint holds every seed's member), else one run after another, each an ordinary run with
its own seed in a ``seed-<s>`` run directory of the combination's. A group's combinations
train as the cohorts of one pass (:func:`fcnn_cli.engine.train.fit_cohorts`), each still an
ensemble of its own seeds, saved in its own run directory as if trained alone. ``seeds.json``
is written last (:mod:`fcnn_cli.sweeps.records`). The tables, and what training takes of them
(labels, features, the weight column, the recipe each run records), come from
:func:`fcnn_cli.sweeps.datasets.read`.
"""

import json
import logging
import time

from fcnn_cli.core.config import Unsupported
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.sweeps.datasets import INPUTS
from fcnn_cli.sweeps.grid import seeds_of, train_config
from fcnn_cli.sweeps.records import RESULT_FILE, SPLITS, described

log = logging.getLogger(__name__)


def _grouped_result(sweep, combination, result, keys, spent):
    """What ``seeds.json`` holds of a combination trained in the group of ``keys``;
    ``spent``: (its seconds, the :func:`fcnn_cli.sweeps.plan.data_files` trained on)."""
    seconds, files = spent
    members = result.members or [{split: result.metrics[split] for split in SPLITS
                                  if split in result.metrics}]
    return {**described(sweep, combination, files),
            "seeds": seeds_of(sweep, result.config), "mode": "grouped",
            "group": keys, "seconds": seconds, "metrics": members}


def train_group(sweep, group, inputs, directory):
    """Train several combinations (each over its seeds) as the cohorts of one vectorised pass
    (:func:`fcnn_cli.engine.train.fit_cohorts`), then save each one's run and ``seeds.json`` as
    :func:`train_combination` does, its time its share of the group's. Returns each
    combination's FcnnError (one that kept nothing) or None; raises ``Unsupported`` where the
    options take no ensemble."""
    from fcnn_cli.core.fileio import write_text
    from fcnn_cli.engine import train

    start = time.perf_counter()
    cohorts = [train_config(sweep, combination, ensemble=sweep.seeds) for combination, _ in group]
    data, val, test = inputs.tables
    results = train.fit_cohorts(data, cohorts, inputs.targets, inputs.features, val, test,
                                weight=inputs.weight, categorical=inputs.categorical)
    done = [(combination, key, result) for (combination, key), result in zip(group, results)
            if not isinstance(result, FcnnError)]
    for _, key, result in done:
        _save(sweep, inputs, result, directory / key)
    seconds = (time.perf_counter() - start) / len(group)
    for combination, key, result in done:
        saved = _grouped_result(sweep, combination, result, [k for _, k in group],
                                (seconds, inputs.files))
        write_text(directory / key / RESULT_FILE,
                   json.dumps(saved, indent=2, default=str) + "\n")
    return [r if isinstance(r, FcnnError) else None for r in results]


def train_combination(sweep, combination, inputs, run_dir):
    """Train one combination over its seeds, save its runs, then ``seeds.json``."""
    from fcnn_cli.core.fileio import write_text

    start = time.perf_counter()
    config, _ = train_config(sweep, combination)
    seeds = seeds_of(sweep, config)
    if sweep.seeds > 1:
        try:
            members, mode = _as_ensemble(sweep, combination, inputs, run_dir), "ensemble"
        except _NoEnsemble as e:
            log.info("%s: seeds one after another: %s", run_dir.name, e)
            members, mode = _one_by_one(sweep, combination, inputs, run_dir, seeds), \
                "sequential"
    else:
        members, mode = [_single(sweep, combination, inputs, run_dir, {})], "single"
    result = {**described(sweep, combination, inputs.files), "seeds": seeds, "mode": mode,
              "seconds": time.perf_counter() - start, "metrics": members}
    write_text(run_dir / RESULT_FILE, json.dumps(result, indent=2, default=str) + "\n")


class _NoEnsemble(Exception):
    """The options take no ensemble: the seeds train one after another."""


def _as_ensemble(sweep, combination, inputs, run_dir):
    """Every seed a member of one ensemble, saved as one run; each member's metrics."""
    try:
        result = _fit(sweep, combination, inputs, {"ensemble": sweep.seeds})
    except Unsupported as e:
        raise _NoEnsemble(str(e)) from None
    _save(sweep, inputs, result, run_dir)
    return result.members


def _one_by_one(sweep, combination, inputs, run_dir, seeds):
    return [_single(sweep, combination, inputs, run_dir / f"seed-{seed}", {"seed": seed})
            for seed in seeds]


def _single(sweep, combination, inputs, run_dir, changes):
    result = _fit(sweep, combination, inputs, changes)
    _save(sweep, inputs, result, run_dir)
    return {split: result.metrics[split] for split in SPLITS if split in result.metrics}


def _fit(sweep, combination, inputs, changes):
    from fcnn_cli.engine import train

    config, net = train_config(sweep, combination, **changes)
    data, val, test = inputs.tables
    return train.fit(data, config, net, inputs.targets, inputs.features, val, test,
                     weight=inputs.weight, categorical=inputs.categorical)


def _save(sweep, inputs, result, run_dir):
    """Save a run in ``run_dir``: its combination's run directory, or a seed's inside it,
    whose lock the sweep holds while it trains (:func:`fcnn_cli.sweeps.run.run`; claimed
    again here, it would refuse this process). The run records its recipe, with which
    predict and evaluate make its columns from raw files, as fcnn train's does."""
    from fcnn_cli.results import runs

    if result.interrupted:  # not saved, a run cut short is never taken for a finished one
        raise KeyboardInterrupt
    result.predictor.recipe = inputs.recipe
    runs.forget_state(run_dir)
    runs.save_run(result, run_dir, *(sweep.data.get(k) for k in INPUTS))
