import numpy as np
import pytest
import torch

from fcnn_cli.engine import shuffle


@pytest.mark.parametrize("size", [0, 7, 100, 1000])
def test_shuffle_buffer_gives_out_every_row_once(size):
    buffer = shuffle.ShuffleBuffer(size, np.random.default_rng(0))
    blocks = [torch.arange(k, k + 50, dtype=torch.float32)[:, None] for k in range(0, 500, 50)]
    out = [x for block in blocks for x, _ in buffer.add(block, block)]
    out += [x for x, _ in buffer.drain()]
    rows = torch.cat(out)[:, 0]
    assert sorted(rows.tolist()) == list(range(500))
    first = rows[:50]
    if size == 0:  # a piece's rows only among themselves
        assert sorted(first.tolist()) == list(range(50))
    elif size >= 100:  # rows from pieces other than the first come out first
        assert first.max() >= 50

