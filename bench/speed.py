"""Speed side by side, in one run on one machine: fcnn against the loop a user writes by hand,
against scikit-learn's MLP, and against the bare arithmetic of a training step.

    python bench/speed.py [--quick] [--json bench/speed.json]

Prints one table (case, fcnn, peer, ratio) and writes it as JSON, and (but with --quick) as
the run's dated record in bench/results/.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

import record
from fcnn_cli.data import simulate
from fcnn_cli.engine import train
from fcnn_cli.engine.prepare import split_indices
from peak import watched

N = 20_000


def quake_arrays():
    t = simulate.earthquakes(n=N, seed=0)
    x = t.frame[[c for c in t.frame.columns if c not in ("x", "y")]].to_numpy(np.float32)
    y = t.frame[["x", "y"]].to_numpy(np.float32)
    x = (x - x.mean(0)) / x.std(0)
    y = (y - y.mean(0)) / y.std(0)
    return t, x, y


def handwritten(x, y, batch, epochs):
    """The book-style loop: DataLoader over a TensorDataset with shuffle, default Adam."""
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 64), torch.nn.SiLU(), torch.nn.Linear(64, 64),
                              torch.nn.SiLU(), torch.nn.Linear(64, 64), torch.nn.SiLU(),
                              torch.nn.Linear(64, 2))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
                        batch_size=batch, shuffle=True)
    start = time.perf_counter()
    for _ in range(epochs):
        for xb, yb in loader:
            loss = ((net(xb) - yb) ** 2).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return len(x) * epochs / (time.perf_counter() - start)


TARGET_KM = 0.070  # the lecture's mean distance between true and predicted epicentres
MAX_EPOCHS = 100


def handwritten_to_target(table):
    """Seconds of training the book-style loop (silu 3 × 64, batch 32, Adam at a constant
    1e-3, DataLoader) needs until the validation mean distance is 70 m, checked each epoch;
    None and the total if it never gets there in MAX_EPOCHS."""
    from torch.utils.data import DataLoader, TensorDataset

    f = table.frame
    x = f[[c for c in f.columns if c not in ("x", "y")]].to_numpy(np.float32)
    y = f[["x", "y"]].to_numpy(np.float32)
    tr, va = split_indices(len(x), 0.05, 0.05, 0)[:2]
    mx, sx, my, sy = x[tr].mean(0), x[tr].std(0), y[tr].mean(0), y[tr].std(0)
    xt, yt = torch.from_numpy((x[tr] - mx) / sx), torch.from_numpy((y[tr] - my) / sy)
    xv = torch.from_numpy((x[va] - mx) / sx)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 64), torch.nn.SiLU(), torch.nn.Linear(64, 64),
                              torch.nn.SiLU(), torch.nn.Linear(64, 64), torch.nn.SiLU(),
                              torch.nn.Linear(64, 2))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(xt, yt), batch_size=32, shuffle=True)
    spent = 0.0
    for epoch in range(1, MAX_EPOCHS + 1):
        start = time.perf_counter()
        for xb, yb in loader:
            loss = ((net(xb) - yb) ** 2).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        spent += time.perf_counter() - start
        with torch.no_grad():
            pred = net(xv).numpy() * sy + my
        if np.sqrt(((pred - y[va]) ** 2).sum(1)).mean() <= TARGET_KM:
            return spent, epoch
    return spent, None


def fcnn_to_target(table):
    """Seconds of default `fcnn train` until its validation mean distance is 70 m."""
    result = train.fit(table)
    spent = 0.0
    for row in result.history:
        spent += row["seconds"]
        if row["val_mean_distance"] <= TARGET_KM:
            return spent, row["epoch"]
    return spent, None


FRESH = 10_000  # rows of new data to score on: a 1 000-row test split cannot tell 0.3 % apart


def peers_accuracy(table, fresh, kind):
    """Default `fcnn train` against scikit-learn's MLP (same 3 × 64, batch 32, Adam, 60 epochs,
    relu: its closest activation) on the same training rows: wall time, and the score on
    ``fresh`` rows that neither has seen."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    import warnings

    start = time.perf_counter()
    result = train.fit(table)
    ours_time = time.perf_counter() - start
    f = table.frame
    label = table.targets
    x = f.drop(columns=label).to_numpy(np.float64)
    strata = f[label[0]].astype(str).to_numpy() if kind == "classify" else None
    tr = split_indices(len(x), 0.05, 0.05, 0, strata)[0]
    mx, sx = x[tr].mean(0), x[tr].std(0) + 1e-12
    xs = (x - mx) / sx
    new = fresh.frame
    x_new = new.drop(columns=label).to_numpy(np.float64)
    ours_out = result.predictor.predict(fresh)
    args = dict(hidden_layer_sizes=(64, 64, 64), batch_size=32, max_iter=60, tol=0,
                n_iter_no_change=10**9, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        if kind == "classify":
            y = f[label[0]].to_numpy()
            mlp = MLPClassifier(**args).fit(xs[tr], y[tr])
            truth = new[label[0]].to_numpy()
            theirs = float((mlp.predict((x_new - mx) / sx) == truth).mean())
            ours = float((ours_out[f"{label[0]}_pred"].to_numpy() == truth).mean())
        else:
            y = f[label].to_numpy(np.float64)
            my, sy = y[tr].mean(0), y[tr].std(0)
            mlp = MLPRegressor(**args).fit(xs[tr], (y[tr] - my) / sy)
            truth = new[label].to_numpy(np.float64)
            pred = mlp.predict((x_new - mx) / sx) * sy + my
            theirs = float(np.sqrt(((pred - truth) ** 2).sum(1)).mean())
            mine = ours_out[[f"{c}_pred" for c in label]].to_numpy(np.float64)
            ours = float(np.sqrt(((mine - truth) ** 2).sum(1)).mean())
        their_time = time.perf_counter() - start
    return ours_time, their_time, ours, theirs


def fcnn_train(table, batch, epochs, net=None, fast=True):
    result = train.fit(table, train.TrainConfig(epochs=epochs, batch_size=batch, val_frac=0.0001,
                                                test_frac=0.0, fast=fast), net=net)
    rows = result.sizes["train"] * epochs
    return rows / sum(r["seconds"] for r in result.history)


def sklearn_mlp(x, y, batch, epochs):
    try:
        from sklearn.neural_network import MLPRegressor
    except ImportError:
        return None
    import warnings

    mlp = MLPRegressor(hidden_layer_sizes=(64, 64, 64), batch_size=batch, max_iter=epochs,
                       tol=0, n_iter_no_change=10**9, random_state=0)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp.fit(x, y)
    return len(x) * epochs / (time.perf_counter() - start)


def floor(batch, steps=3000, repeat=5):
    """The matrix products of one step (forward, and backward for inputs and weights) run back
    to back, without autograd or an optimiser: the arithmetic a step cannot avoid. The best of
    ``repeat`` runs on one thread and on all, so that neither a noisy moment nor a poor thread
    count can make the floor look easy to reach."""
    sizes = [(8, 64), (64, 64), (64, 64), (64, 2)]
    ws = [torch.randn(o, i) for i, o in sizes]
    xs = [torch.randn(batch, i) for i, _ in sizes]
    gs = [torch.randn(batch, o) for _, o in sizes]
    best, threads = float("inf"), torch.get_num_threads()
    for n in sorted({1, threads}):  # whichever thread count suits these products better
        torch.set_num_threads(n)
        for _ in range(repeat):
            start = time.perf_counter()
            for _ in range(steps):
                for w, x, g in zip(ws, xs, gs):
                    x @ w.T
                    g @ w
                    g.T @ x
            best = min(best, time.perf_counter() - start)
    torch.set_num_threads(threads)
    return batch * steps / best


def step_alone(table, batch, steps=2000, repeat=5):
    """Samples per second of the training step alone, the default network's as fcnn trains it:
    forward, backward, the optimiser's update and the weight average, on the table's first
    minibatches in turn, on one thread (the count fcnn takes for a network this small); the
    best of ``repeat`` runs."""
    from fcnn_cli.engine import loop, prepare, state as training_state

    config = train.TrainConfig(batch_size=batch, ensemble=1)
    prepared = prepare.prepare(table, config)
    cpu = torch.device("cpu")
    state = training_state.build(prepared, config, None, train.DEFAULT_DROPOUT[prepared.kind],
                                 cpu)
    rows = loop.Tensors.of(prepared, cpu)
    starts = [(k * batch) % (len(rows.x) - batch + 1) for k in range(64)]
    batches = [(rows.x[i:i + batch], rows.y[i:i + batch]) for i in starts]
    fast, optimizer, average = state.fast, state.optimizer, state.average
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    best = float("inf")
    try:
        for _ in range(repeat):
            start = time.perf_counter()
            for k in range(steps):
                fast(*batches[k % len(batches)], optimizer)
                average.update()
            best = min(best, time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return batch * steps / best


def loading(rows=1_000_000):
    """Seconds and peak temporary MB from a table's feature columns to the network's scaled
    float32 input: fcnn's path against the float64 one a user writes by hand with pandas."""
    import tracemalloc

    from fcnn_cli.data.preprocess import Scaler
    from fcnn_cli.data.columns import numeric_matrix

    table = simulate.earthquakes(n=rows, seed=1)
    cols = [c for c in table.frame.columns if c not in ("x", "y")]
    scaler = Scaler.fit("standard", numeric_matrix(table, cols))
    shift, scale = np.asarray(scaler.shift), np.asarray(scaler.scale)
    def fcnn_way():  # as prepare does it: scaled in place
        x = numeric_matrix(table, cols)
        return scaler.transform(x, out=x)

    ways = {"fcnn": fcnn_way,
            "pandas": lambda: ((table.frame[cols].to_numpy(np.float64) - shift) / scale)
            .astype(np.float32)}
    measured = {}
    for name, way in ways.items():
        seconds = []
        for _ in range(5):
            start = time.perf_counter()
            way()
            seconds.append(time.perf_counter() - start)
        tracemalloc.start()
        way()
        measured[name] = min(seconds), tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
    return measured


def wall(cmd, repeat=5, ok=True, env=None):
    """Best of ``repeat`` wall times of a command that succeeds (or, ``ok=False``, fails), in
    environment ``env`` (default: this process's)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, env=env)
        assert (done.returncode == 0) == ok, done.stderr
        best = min(best, time.perf_counter() - start)
    return best


def streaming(rows):
    """Rows per second and peak memory of `fcnn predict` and of `fcnn evaluate` on one Parquet
    file of `rows` events: {command: (rows/s, MB)}."""
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "big.parquet")
        chunk = simulate.earthquakes(n=min(rows, 1_000_000), seed=1)
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrow = pa.Table.from_pandas(chunk.frame, preserve_index=False)
        with pq.ParquetWriter(data, arrow.schema) as writer:
            for _ in range(rows // len(chunk.frame)):
                writer.write_table(arrow)
        small = simulate.earthquakes(n=2000, seed=2)
        model = os.path.join(tmp, "model.pt")
        result = train.fit(small, train.TrainConfig(epochs=1))
        from fcnn_cli.network import checkpoint

        checkpoint.save(result.predictor, model)
        commands = {"predict": ["predict", model, data, "-o", os.path.join(tmp, "p.parquet")],
                    "evaluate": ["evaluate", model, data, "--json"]}
        measured = {}
        for name, args in commands.items():
            start = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-m", "fcnn_cli", *args],
                                    stdout=subprocess.DEVNULL)
            peak = watched(proc)
            assert proc.returncode == 0
            measured[name] = rows / (time.perf_counter() - start), peak
        return measured



def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer epochs and rows")
    parser.add_argument("--json", default="bench/speed.json")
    args = parser.parse_args()
    epochs = 2 if args.quick else 5
    table, x, y = quake_arrays()
    rows = []

    def add(case, ours, peer, unit, higher_is_better=True):
        ratio = None if peer in (None, 0) or ours is None else (
            ours / peer if higher_is_better else peer / ours)
        rows.append({"case": case, "fcnn": ours, "peer": peer, "unit": unit, "ratio": ratio})
        print(rows[-1], flush=True)

    for batch in (32, 256):
        ours = fcnn_train(table, batch, epochs)
        add(f"train batch {batch} vs hand-written DataLoader loop", ours,
            handwritten(x, y, batch, epochs), "samples/s")
        add(f"train batch {batch} vs scikit-learn MLPRegressor", ours,
            sklearn_mlp(x, y, batch, epochs), "samples/s")
        bare = floor(batch)
        add(f"train batch {batch}: times above the floor (bare matmuls)", ours, bare,
            "samples/s", higher_is_better=False)
        add(f"the step alone at batch {batch}: times above the floor", step_alone(table, batch),
            bare, "samples/s", higher_is_better=False)
    resnet = dict(arch="resnet")
    add("train --arch resnet, batch 32: fast path vs autograd (--no-fast)",
        fcnn_train(table, 32, epochs, resnet), fcnn_train(table, 32, epochs, resnet, fast=False),
        "samples/s")
    ours, ours_epoch = fcnn_to_target(table)
    theirs, their_epoch = handwritten_to_target(table)
    print(f"70 m: fcnn epoch {ours_epoch}, hand-written epoch {their_epoch} "
          f"(None: not within {MAX_EPOCHS})", flush=True)
    add("time to 70 m: default fcnn train vs hand-written loop", ours, theirs, "s",
        higher_is_better=False)
    if not args.quick:
        try:
            t_ours, t_theirs, d_ours, d_theirs = peers_accuracy(
                table, simulate.earthquakes(n=FRESH, seed=99), "regress")
            add("earthquakes, default training: wall time vs MLPRegressor", t_ours, t_theirs,
                "s", higher_is_better=False)
            add(f"earthquakes: mean distance on {FRESH:,} new events vs MLPRegressor",
                d_ours * 1000,
                d_theirs * 1000, "m", higher_is_better=False)
            galaxies = simulate.galaxies()
            t_ours, t_theirs, a_ours, a_theirs = peers_accuracy(
                galaxies, simulate.galaxies(n=FRESH, seed=99), "classify")
            add("galaxies, default training: wall time vs MLPClassifier", t_ours, t_theirs,
                "s", higher_is_better=False)
            add(f"galaxies: error rate on {FRESH:,} new images vs MLPClassifier",
                100 * (1 - a_ours), 100 * (1 - a_theirs), "%", higher_is_better=False)
        except ImportError:
            print("scikit-learn is not installed: peers skipped", flush=True)
    load = loading()
    add("1,000,000 rows to scaled float32 input vs pandas float64 way: time",
        load["fcnn"][0], load["pandas"][0], "s", higher_is_better=False)
    add("1,000,000 rows to scaled float32 input: peak temporary memory", load["fcnn"][1],
        load["pandas"][1], "MB", higher_is_better=False)
    torch_import = wall([sys.executable, "-c", "import torch"])
    add("start-up: fcnn --help vs import torch", wall([sys.executable, "-m", "fcnn_cli", "--help"]),
        torch_import, "s", higher_is_better=False)
    add("argument error: fcnn train DATA --lr -1 vs import torch",
        wall([sys.executable, "-m", "fcnn_cli", "train", "sample_data/quakes.csv", "--lr", "-1"],
             ok=False), torch_import, "s", higher_is_better=False)
    for n in ((200_000, 1_000_000) if args.quick else (1_000_000, 5_000_000)):
        for command, (speed, peak) in streaming(n).items():
            add(f"{command} {n:,} Parquet rows", speed, None, "rows/s")
            add(f"{command} {n:,} rows: peak memory", peak, None, "MB")

    out = Table(title=f"fcnn speed ({platform.machine()}, {os.cpu_count()} CPUs, "
                      f"torch {torch.__version__}, {torch.get_num_threads()} threads)")
    for col in ("case", "fcnn", "peer", "unit", "ratio"):
        out.add_column(col, justify="left" if col in ("case", "unit") else "right")
    for r in rows:
        out.add_row(r["case"], f"{r['fcnn']:.4g}", "" if r["peer"] is None else f"{r['peer']:.4g}",
                    r["unit"], "" if r["ratio"] is None else f"{r['ratio']:.2f}×")
    Console(width=120).print(out)
    with open(args.json, "w") as f:
        json.dump({"machine": platform.platform(), "cpus": os.cpu_count(), "rows": rows}, f,
                  indent=2)
    if not args.quick:  # a quick run checks the script; its figures are no record
        record.write("speed", [record.table(out.title, ("case", "fcnn", "peer", "unit", "ratio"),
                                            rows)])


if __name__ == "__main__":
    main()
