"""The optimisers: torch.optim's fused Adam and SGD without the compiler stack.

torch.optim wraps ``add_param_group``, ``zero_grad``, ``state_dict``, ``load_state_dict`` and
``step`` in guards against ``torch.compile`` that import ``torch._dynamo`` on first use: about
a second, more than ``import torch`` itself, on every training although fcnn compiles nothing.
:class:`Adam` and :class:`SGD` are torch's classes (the learning-rate schedulers take them, and
their ``state_dict`` is torch's, so saved runs resume) whose wrapped methods are the functions
inside the guards, and whose ``step`` calls the very fused kernel that torch's fused step calls,
with the state torch's would make: the same numbers, bit for bit.
"""

import torch
from torch.optim import Optimizer


def _unguarded(method):
    """The function inside torch's ``_disable_dynamo`` guard (``functools.wraps`` keeps it)."""
    return getattr(method, "__wrapped__", method)


class _Fused:
    """What :class:`Adam` and :class:`SGD` share: the unguarded methods and the step."""

    add_param_group = _unguarded(Optimizer.add_param_group)
    zero_grad = _unguarded(Optimizer.zero_grad)
    state_dict = _unguarded(Optimizer.state_dict)
    load_state_dict = _unguarded(Optimizer.load_state_dict)

    @torch.no_grad()
    def step(self, closure=None):
        """``optimizer.step()`` of torch's fused optimiser (no closure: fcnn passes none)."""
        if closure is not None:
            raise ValueError("this optimiser's step takes no closure")
        adam = isinstance(self, torch.optim.Adam)
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                # One device and dtype a group: an fcnn network lives whole on one device.
                # SGD without momentum keeps no state, as torch's keeps none
                keeps = adam or group["momentum"]
                states = [self.state[p] if keeps else {} for p in params]
                first = [start_state(s, p, group, adam) for s, p in zip(states, params)][0]
                kernel(adam, group, states, first, group["lr"], group["weight_decay"],
                       params, [p.grad for p in params])


class Adam(_Fused, torch.optim.Adam):
    """torch.optim.Adam(fused=True), stepped and managed without ``torch._dynamo``."""

    def __init__(self, params, lr, weight_decay):
        super().__init__(params, lr=lr, weight_decay=weight_decay, fused=True)


class SGD(_Fused, torch.optim.SGD):
    """torch.optim.SGD(fused=True), stepped and managed without ``torch._dynamo``."""

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay,
                         fused=True)


def make(params, config):
    """The optimiser a TrainConfig ``config`` asks for, over ``params``."""
    # The fused kernels update every parameter in one pass, on the CPU as on a GPU.
    if config.optimizer == "sgd":
        return SGD(params, config.lr, config.momentum, config.weight_decay)
    return Adam(params, config.lr, config.weight_decay)


def start_state(state, p, group, adam):
    """The state torch's fused step makes where ``p`` has none, Adam's step counted; whether
    this is SGD's first step (its momentum buffer starts as the gradient)."""
    if adam:
        if not state:
            state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        state["step"].add_(_one(p.device))
        return False
    first = bool(group["momentum"]) and state.get("momentum_buffer") is None
    if first:
        state["momentum_buffer"] = torch.empty_like(p)
    return first


_ONES = {}  # device -> a float32 1 on it


def _one(device):
    """A float32 1 on ``device``, made once: adding the number 1 converts it to a tensor on
    every call, which costs as much as the addition."""
    if device not in _ONES:
        _ONES[device] = torch.ones((), dtype=torch.float32, device=device)
    return _ONES[device]


def kernel(adam, group, states, first, lr, decay, params, grads):
    """One fused kernel call that updates ``params`` from ``grads`` and their ``states``."""
    if adam:
        beta1, beta2 = group["betas"]
        torch._fused_adam_(params, grads, [s["exp_avg"] for s in states],
                           [s["exp_avg_sq"] for s in states], [], [s["step"] for s in states],
                           lr=lr, beta1=beta1, beta2=beta2, weight_decay=decay,
                           eps=group["eps"], amsgrad=False, maximize=False)
        return
    buffers = [s["momentum_buffer"] for s in states] if group["momentum"] else []
    torch._fused_sgd_(params, grads, buffers, weight_decay=decay, momentum=group["momentum"],
                      lr=lr, dampening=0.0, nesterov=False, maximize=False,
                      is_first_step=first)
