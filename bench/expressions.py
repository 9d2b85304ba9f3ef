"""What derived columns and padded objects cost per million rows: `--define` against the same
arithmetic written by hand in numpy, and `--objects Muon:2` against the same padding written
by hand with awkward, side by side in one run; and each beside plain training, a one-epoch fit
of the default network on the padded columns (a recipe's steps run once a run in memory, and
once an epoch when streamed).

    python bench/expressions.py [--rows 1000000]

The table holds two muons' momenta and energies as float64 columns, and a collection of 0 to 5
muons an event (Muon_Px, Muon_Py, Muon_Pz, Muon_E) as list columns of arrays, which is how
Parquet list columns and ROOT jagged branches are read. Each figure is the best of three runs,
in milliseconds per million rows. Prints one table and writes the run's dated record to
bench/results/.
"""

import argparse
import time

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

import record
from fcnn_cli.data import expressions

BRANCHES = ("Px", "Py", "Pz", "E")
PT = "sqrt(px1**2 + py1**2)"
MASS = "sqrt((E1 + E2)**2 - (px1 + px2)**2 - (py1 + py2)**2 - (pz1 + pz2)**2)"
REPEATS = 3


def flat(rows, rng):
    columns = {f"{p}{k}": rng.normal(0, 30, rows) for p in ("px", "py", "pz") for k in (1, 2)}
    for k in (1, 2):
        columns[f"E{k}"] = np.sqrt(sum(columns[f"{p}{k}"] ** 2 for p in ("px", "py", "pz"))
                                   + 0.1057 ** 2)
    return pd.DataFrame(columns)


def jagged(rows, rng):
    counts = rng.integers(0, 6, rows)
    ends = np.cumsum(counts)[:-1]
    columns = {}
    for branch in BRANCHES:
        cells = np.empty(rows, dtype=object)
        cells[:] = [part.copy() for part in np.split(rng.normal(0, 30, counts.sum()), ends)]
        columns[f"Muon_{branch}"] = cells
    return pd.DataFrame(columns)


def pt_by_hand(frame):
    px, py = frame["px1"].to_numpy(), frame["py1"].to_numpy()
    return np.sqrt(px ** 2 + py ** 2)


def mass_by_hand(frame):
    c = {name: frame[name].to_numpy() for name in frame.columns}
    return np.sqrt((c["E1"] + c["E2"]) ** 2 - (c["px1"] + c["px2"]) ** 2
                   - (c["py1"] + c["py2"]) ** 2 - (c["pz1"] + c["pz2"]) ** 2)


def both_by_hand(frame):
    with np.errstate(invalid="ignore"):
        return frame.assign(pt=pt_by_hand(frame), mass=mass_by_hand(frame))


def padded_by_hand(frame, k=2):
    """The leading k muons with awkward, NaN where fewer, and whether each is there."""
    import awkward as ak

    out = {}
    for branch in BRANCHES:
        cells = frame[f"Muon_{branch}"].to_numpy()
        lists = ak.unflatten(np.concatenate(cells), np.fromiter(map(len, cells), np.int64,
                                                                count=len(cells)))
        padded = ak.to_numpy(ak.fill_none(ak.pad_none(lists, k, clip=True), np.nan))
        for i in range(k):
            out[f"Muon_{branch}_{i}"] = padded[:, i]
            if branch == BRANCHES[0]:
                out[f"Muon_{i}_present"] = (ak.to_numpy(ak.num(lists)) > i).astype(float)
    return pd.concat([frame, pd.DataFrame(out, index=frame.index)], axis=1)


def one_epoch_fit(padded, rng):
    """Seconds of a one-epoch fit of the default network (one thread) on the padded columns,
    missing muons as 0, against a label of noise: the plain training the steps are set beside."""
    from fcnn_cli.data.tables import Table
    from fcnn_cli.engine import train

    frame = padded.drop(columns=[f"Muon_{b}" for b in BRANCHES]).fillna(0.0)
    frame["y"] = rng.normal(size=len(frame))
    config = train.TrainConfig(epochs=1, threads=1, test_frac=0.0)
    start = time.perf_counter()
    train.fit(Table(frame, ["y"]), config)
    return time.perf_counter() - start


def best(run):
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    table, lists = flat(args.rows, rng), jagged(args.rows, rng)
    pt, mass = expressions.parse(PT), expressions.parse(MASS)
    defined = expressions.definitions([f"pt={PT}", f"mass={MASS}"])
    padding = expressions.objects("Muon:2", lists)
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(mass.evaluate(table), mass_by_hand(table), equal_nan=True)
    pd.testing.assert_frame_equal(expressions.derive(lists, padding)[padded_by_hand(lists)
                                                                     .columns],
                                  padded_by_hand(lists))
    cases = [
        (f"evaluate {PT}", lambda: pt.evaluate(table), lambda: pt_by_hand(table)),
        ("evaluate an invariant mass of two muons", lambda: mass.evaluate(table),
         lambda: mass_by_hand(table)),
        ("derive both as columns of a new frame", lambda: expressions.derive(table, defined),
         lambda: both_by_hand(table)),
        (f"--objects Muon:2, {len(BRANCHES)} list columns of 0–5 muons (awkward by hand)",
         lambda: expressions.derive(lists, padding), lambda: padded_by_hand(lists)),
    ]
    per_million = 1e9 / args.rows  # ms per million rows
    epoch = one_epoch_fit(expressions.derive(lists, padding), rng) * per_million
    rows = []
    for name, ours, theirs in cases:
        mine, hand = best(ours) * per_million, best(theirs) * per_million
        rows.append((name, mine, hand, mine / hand, mine / epoch))
    columns = ("case", "fcnn ms / 1M rows", "by hand ms / 1M rows", "fcnn / by hand",
               "fcnn / one-epoch fit")
    out = Table(title=f"expressions on {args.rows:,} rows (float64), best of {REPEATS}; a "
                f"one-epoch fit of the default network on the padded columns: {epoch:.0f} ms")
    for column in columns:
        out.add_column(column, justify="left" if column == "case" else "right")
    for name, mine, hand, ratio, share in rows:
        out.add_row(name, f"{mine:.1f}", f"{hand:.1f}", f"{ratio:.2f}", f"{share:.3f}")
    Console(width=140).print(out)
    record.write("expressions", [record.table(out.title, columns, rows)])


if __name__ == "__main__":
    main()
