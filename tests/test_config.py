import numpy as np
import pytest

from fcnn_cli.config import MAX_SEED, TrainConfig, valid_seed
from fcnn_cli.errors import FcnnError


@pytest.mark.parametrize("seed", [-1, MAX_SEED + 1, 10 ** 20, 1.5, "1", None])
def test_seeds_out_of_range_or_not_whole_are_refused(seed):
    assert not valid_seed(seed)
    with pytest.raises(FcnnError, match="--seed must be a whole number from 0 to"):
        TrainConfig(seed=seed)


@pytest.mark.parametrize("seed", [0, 1, MAX_SEED, np.int64(5), np.uint64(MAX_SEED)])
def test_seeds_every_generator_takes(seed):
    import torch

    assert TrainConfig(seed=seed).seed == seed
    np.random.default_rng(seed)
    torch.manual_seed(seed)
    torch.Generator().manual_seed(int(seed))
