"""Learned embeddings of categorical features of many levels: a column of more levels than its
one-hot inputs may take (:data:`~fcnn_cli.data.categories.MAX_LEVELS`) is one input, its
level's index (0: the unknown level, then the levels in order), and that index picks a row of
a table of its own, a vector of learned values, which takes the input's place before the first
layer (as fastai's and pytorch-tabular's category embeddings do).

A table has a row per level and one for the unknown level, and :func:`width` values a row:
fastai's rule of thumb, round(1.6 · n^0.56) for n rows, capped at :data:`MOST_WIDTH` (fastai
caps it at 600): 66 rows give 17 values, 100 rows 21, 205 rows and more 32. The cap keeps the
first layer and the step small where one-hot inputs would give one per level, and a table of
100 001 rows at 3.2 million weights. Its rows start as ``nn.Embedding``'s, from a standard
normal: the spread of a standardised feature; but the unknown level's row starts at zero, near
the mean of the others, and stays there (no training row has that level, so no step moves it):
a level never seen gives the input of an average one, not that of a random level. An index that
is no level's (negative, past the table, not a whole number, NaN: a caller of the exported
graph may give one) is the unknown level's too.
"""

import torch
from torch import nn

MOST_WIDTH = 32


def width(rows):
    """The values of each row of a table of ``rows`` rows."""
    return min(MOST_WIDTH, round(1.6 * rows ** 0.56))


def layout(categories, inputs):
    """NetConfig's ``levels`` for the network's ``inputs`` under ``categories``
    (:class:`~fcnn_cli.data.categories.Categories`, or None): [input position, rows, width]
    of each index input, in input order."""
    if categories is None:
        return []
    rows = categories.index_rows()
    return [[i, rows[n], width(rows[n])] for i, n in enumerate(inputs) if n in rows]


def inputs(cfg):
    """The first layer's inputs of NetConfig ``cfg`` without an embedding of numbers: each
    index input widened to its table's width."""
    return cfg.n_in + sum(w - 1 for _, _, w in cfg.levels)


class LevelEmbedding(nn.Module):
    """Rows × inputs in (each index input a whole number, as float), rows × :func:`inputs`
    out: the other inputs in their order, then the vector of each index input's level."""

    def __init__(self, cfg):
        super().__init__()
        self.positions = [p for p, _, _ in cfg.levels]
        self.tables = nn.ParameterList([nn.Parameter(torch.empty(rows, w))
                                        for _, rows, w in cfg.levels])
        for table in self.tables:
            if not table.is_meta:  # a network built to check shapes draws nothing
                nn.init.normal_(table)
                with torch.no_grad():
                    table[0].zero_()
        # The runs of other inputs between the index inputs, as slices (constant in a graph).
        edges = [-1, *self.positions, cfg.n_in]
        self.others = [(a + 1, b) for a, b in zip(edges, edges[1:]) if b > a + 1]

    def forward(self, x):
        vectors = [nn.functional.embedding(_index(x[..., p], len(table)), table)
                   for p, table in zip(self.positions, self.tables)]
        return torch.cat([x[..., a:b] for a, b in self.others] + vectors, dim=-1)


def _index(value, rows):
    """The row of each index input's ``value``: itself where it is a whole number from 0 to
    ``rows`` - 1, else 0, the unknown level's."""
    index = value.long()
    return torch.where((index == value) & (index >= 0) & (index < rows), index,
                       torch.zeros_like(index))
