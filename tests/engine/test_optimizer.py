import subprocess
import sys

import pytest
import torch

from fcnn_cli.engine import optimizer


def _problem(seed, device="cpu"):
    """Two parameters of a small least-squares problem and its data."""
    g = torch.Generator().manual_seed(seed)
    tensors = [torch.randn(5, 3, generator=g), torch.randn(5, generator=g),
               torch.randn(16, 3, generator=g), torch.randn(16, 5, generator=g)]
    params, x, y = [t.to(device) for t in tensors[:2]], tensors[2], tensors[3]
    return params, x.to(device), y.to(device)


def _train(make, steps=6, seed=0, start=None, device="cpu"):
    """``steps`` steps of the optimiser ``make(params)`` (from ``start``, a state dict); the
    parameters and the optimiser at the end."""
    params, x, y = _problem(seed, device)
    params = [p.requires_grad_() for p in params]
    opt = make(params)
    if start is not None:
        opt.load_state_dict(start)
    for _ in range(steps):
        opt.zero_grad()
        ((x @ params[0].t() + params[1] - y) ** 2).mean().backward()
        opt.step()
    return [p.detach().clone() for p in params], opt


MAKERS = [  # (ours, torch's own fused optimiser)
    (lambda ps: optimizer.Adam(ps, 0.01, 0.0),
     lambda ps: torch.optim.Adam(ps, lr=0.01, fused=True)),
    (lambda ps: optimizer.Adam(ps, 0.01, 0.1),
     lambda ps: torch.optim.Adam(ps, lr=0.01, weight_decay=0.1, fused=True)),
    (lambda ps: optimizer.SGD(ps, 0.05, 0.9, 0.01),
     lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.01, fused=True)),
    (lambda ps: optimizer.SGD(ps, 0.05),
     lambda ps: torch.optim.SGD(ps, lr=0.05, fused=True)),
]


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
@pytest.mark.parametrize("ours, theirs", MAKERS)
def test_steps_equal_torch_fused_bit_for_bit(ours, theirs, device):
    mine, _ = _train(ours, device=device)
    reference, _ = _train(theirs, device=device)
    assert all(torch.equal(a, b) for a, b in zip(mine, reference))
    # and the updates are real: the parameters moved
    assert not torch.equal(mine[0], _problem(0, device)[0][0])


@pytest.mark.parametrize("ours, theirs", MAKERS)
def test_state_dicts_are_torchs_both_ways(ours, theirs):
    """A state saved by torch's optimiser resumes in ours and the other way round, ending
    where eight uninterrupted steps of torch's end."""
    reference, _ = _train(theirs, steps=8)
    _, mine = _train(ours, steps=3)
    _, torchs = _train(theirs, steps=3)
    assert _flat(mine.state_dict()) == _flat(torchs.state_dict())
    for saved, other in ((torchs, ours), (mine, theirs)):
        resumed = _continue(other, saved)
        assert all(torch.equal(a, b) for a, b in zip(resumed, reference))


def _flat(state):
    """A state dict's entries as comparable values."""
    if isinstance(state, dict):
        return {k: _flat(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return [_flat(v) for v in state]
    return state.tolist() if isinstance(state, torch.Tensor) else state


def _continue(make, saved, steps=5):
    """``steps`` more steps from the parameters and state of ``saved`` in a new optimiser."""
    _, x, y = _problem(0)
    live = [p.detach().clone().requires_grad_() for p in saved.param_groups[0]["params"]]
    opt = make(live)
    opt.load_state_dict(saved.state_dict())
    for _ in range(steps):
        opt.zero_grad()
        ((x @ live[0].t() + live[1] - y) ** 2).mean().backward()
        opt.step()
    return [p.detach() for p in live]


def test_closure_refused():
    with pytest.raises(ValueError, match="closure"):
        optimizer.Adam([torch.zeros(1, requires_grad=True)], 0.1, 0.0).step(lambda: 0.0)


def test_never_imports_the_compiler_stack():
    code = """
import sys, torch
from fcnn_cli.engine import optimizer
for make in (lambda ps: optimizer.Adam(ps, 0.01, 0.1), lambda ps: optimizer.SGD(ps, 0.1, 0.9)):
    p = torch.ones(3, requires_grad=True)
    opt = make([p])
    torch.optim.lr_scheduler.ReduceLROnPlateau(opt).step(1.0)
    (p * p).sum().backward()
    opt.step()
    opt.zero_grad()
    opt.load_state_dict(opt.state_dict())
assert "torch._dynamo" not in sys.modules
"""
    subprocess.run([sys.executable, "-c", code], check=True)
