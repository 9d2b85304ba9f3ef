"""A training step without autograd for the common networks: forward and backward written out
with torch matrix products, then one fused optimiser kernel over all parameters at once.

For a small MLP most of an eager step's time is bookkeeping, not arithmetic: autograd's graph,
and the optimiser's per-call Python (about 30 µs a call; this whole step takes 125 µs at
3 × 64, batch 32). Here each layer costs its three matrix products, a bias sum and one
activation-gradient kernel (the one autograd itself calls), and the parameters live in one
flat tensor that the fused Adam or SGD kernel updates in a single call. It covers plain and
residual networks without batch norm (with dropout, though not SELU's alpha-dropout) and with
the activations below, for regression and for classification without class weights (event
weights, carried with the labels, it takes); everything else trains through autograd. Tests
check that its gradients and updates equal autograd's and torch.optim's.

The same code trains an ensemble's members at once: given a list of networks of one shape,
each layer's weights of all members are one (members × out × in) view, its products batched
matrix products (``bmm``, the bias added in place), and one flat tensor still holds every
parameter, so that one optimiser kernel updates all members. Members may differ in their
dropout rate, and in their learning rate and weight decay (scalars of the kernel): then
:class:`MemberRates` has the kernel compute the unscaled step, which each value then takes at
its own member's rate.

The step is one module of over 400 lines: its forward, backward and fused update all work on
the one flat parameter layout (:func:`flatten`, :class:`Views`), which none of them is
readable without.
"""

import contextlib

import torch
import torch.nn.functional as F

from fcnn_cli.engine import optimizer as optimizer_kernels
from fcnn_cli.network.model import Dense, ResidualBlock
from fcnn_cli.network.tasks import HALF_LOG_TWO_PI, MIN_VARIANCE

SELU_LAMBDA, SELU_ALPHA = 1.0507009873554805, 1.6732632423543772


def _activations():
    """activation name -> (forward z ↦ h, backward (g, z, h, out) ↦ g·σ'(z) written into
    ``out``), the backward from the pre-activation z and the output h with the very kernel
    autograd calls, in its out= form and past torch.ops' Python wrapper (a microsecond of a
    step's hundred)."""
    def kernel(name):  # the overload itself where a torch keeps no _op behind it
        overload = getattr(torch.ops.aten, name).grad_input
        return getattr(overload, "_op", overload)
    threshold, leaky, elu, silu, gelu, tanh, sigmoid, softplus = map(kernel, (
        "threshold_backward", "leaky_relu_backward", "elu_backward", "silu_backward",
        "gelu_backward", "tanh_backward", "sigmoid_backward", "softplus_backward"))
    return {
        # relu and silu (the default) straight to the functions F.relu and F.silu call, past
        # their Python checks: two calls a layer fewer
        "relu": (torch.relu, lambda g, z, h, out: threshold(g, h, 0, grad_input=out)),
        "leaky-relu": (F.leaky_relu,
                       lambda g, z, h, out: leaky(g, z, 0.01, False, grad_input=out)),
        "elu": (F.elu, lambda g, z, h, out: elu(g, 1.0, 1.0, 1.0, True, h, grad_input=out)),
        "selu": (torch.selu, lambda g, z, h, out: elu(
            g, SELU_ALPHA, SELU_LAMBDA, 1.0, True, h, grad_input=out)),
        "silu": (torch._C._nn.silu, lambda g, z, h, out: silu(g, z, grad_input=out)),
        "gelu": (F.gelu, lambda g, z, h, out: gelu(g, z, grad_input=out)),
        "tanh": (torch.tanh, lambda g, z, h, out: tanh(g, h, grad_input=out)),
        "sigmoid": (torch.sigmoid, lambda g, z, h, out: sigmoid(g, h, grad_input=out)),
        "softplus": (F.softplus,
                     lambda g, z, h, out: softplus(g, z, 1.0, 20.0, grad_input=out)),
    }


ACTIVATIONS = _activations()


def supports(model, task):
    """Whether this step can train ``model`` for ``task`` at all."""
    cfg = model.config
    # An embedding of the features (sin, cos, a product per feature) or of levels (a table's
    # rows) is a step this one does not write out: such a network trains through autograd.
    return (all(isinstance(block, (Dense, ResidualBlock)) for block in model.body)
            and cfg.embed == "none" and not cfg.levels and not cfg.batchnorm
            and not (cfg.dropout and cfg.arch == "selu")
            and cfg.activation in ACTIVATIONS and getattr(task, "weights", None) is None)


def applies(model, task, config):
    """Whether a run with ``config`` (a TrainConfig) trains ``model`` through this step, single
    run or ensemble: where it can, unless asked for autograd (``fast`` off) or bf16, which
    autocasts autograd's forward (this step's products are written out in fp32)."""
    return config.fast and config.precision != "bf16" and supports(model, task)


class FastStep:
    """``step(x, y, optimizer)`` computes the loss, writes every parameter's ``.grad`` as
    ``loss.backward()`` would, and updates the parameters as ``optimizer.step()`` would.

    ``model`` is one network, or a list of networks of one shape (an ensemble's members):
    then ``x`` and ``y`` carry a leading member axis (each member's own minibatch) and the
    loss is one per member.

    ``flat`` is the one parameter the optimiser must be built on: every parameter of the model
    becomes a view into it, and every ``.grad`` a view into its ``.grad``. The step works on
    detached views of them, fixed at construction: the model's parameters may change in place
    (``load_state_dict`` copies into them) but must not be replaced.
    """

    buffers = ()  # the networks it trains hold none (no batch norm)

    def __init__(self, model, task):
        stacked = isinstance(model, list)  # members with a member axis, however many
        models = model if stacked else [model]
        self.flat = flatten(models)
        self.data = self.flat.detach()
        model = models[0]
        self.count, self.sizes = len(models), [p.numel() for p in model.parameters()]
        self.rates = None  # or MemberRates: members with their own lr and weight decay
        self.act, self.act_backward = ACTIVATIONS[model.config.activation]
        self.keep, self.dropping = _keep(models, self.flat)
        self.output_grad = _output_grad(task)

        def affine(pick):  # the layer that ``pick`` chooses in a network, of every member
            return _Affine([pick(m) for m in models], stacked)
        # Per block: (layer,) for a plain layer, (first, second, projector or None) for a
        # residual one; plain tensors, so that no Module attribute lookup costs time per step.
        self.blocks = [(affine(lambda m, k=k: m.body[k][0]),) if isinstance(b, Dense) else
                       (affine(lambda m, k=k: m.body[k].linear1),
                        affine(lambda m, k=k: m.body[k].linear2),
                        None if _identity(b) else affine(lambda m, k=k: m.body[k].shortcut))
                       for k, b in enumerate(model.body)]
        self.head = affine(lambda m: m.head)
        self.plain = _Plain(self) if (
            not stacked and not self.dropping and self.flat.device.type == "cpu"
            and all(isinstance(b, Dense) for b in model.body)) else None

    def __call__(self, x, y, optimizer):
        loss = self.gradients(x, y)
        self.update(optimizer)
        return loss

    def gradients(self, x, y):
        """The loss, with every parameter's gradient written into ``flat.grad``."""
        if self.plain:
            return self.plain(x, y)
        h, saved = x, []
        for block in self.blocks:
            if len(block) == 1:
                h, layer = self._layer(block[0], h)
                saved.append(layer)
            else:  # a residual block: σ(W₂ h₁ + b₂ + S x) with h₁ = σ(W₁ x + b₁)
                first, second, projector = block
                h1, one = self._layer(first, h)
                h, two = self._layer(second, h1, h if projector is None else h @ projector.wt)
                saved.append((one, two))
        head = self.head
        loss, g = self.output_grad(head(h), y)
        head.grads(g, h)
        g = head.input_grad(g)
        for k in range(len(self.blocks) - 1, -1, -1):
            g = self._backward(self.blocks[k], saved[k], g, need_input=k > 0)
        return loss

    def update(self, optimizer, lr=None):
        """``optimizer.step()`` from the gradients in ``flat.grad``; ``lr``, a float32 tensor on
        the device, replaces the group's learning rate (a CUDA graph reads it anew each replay)."""
        _update(self.flat, self.data, optimizer, lr, self.rates)

    def member_values(self, values):
        """A tensor of ``flat``'s layout holding ``values[k]`` wherever member k's values are."""
        per = torch.tensor(values, dtype=self.flat.dtype, device=self.flat.device)
        return torch.cat([per.repeat_interleave(n) for n in self.sizes])

    def spans(self, members):
        """The (start, end) ranges of ``flat`` that hold the parameters of ``members`` (indices
        of the networks given), adjacent members' merged into one range."""
        runs = []
        for m in sorted(members):
            if runs and runs[-1][1] == m:
                runs[-1][1] = m + 1
            else:
                runs.append([m, m + 1])
        spans, offset = [], 0
        for n in self.sizes:
            spans += [(offset + a * n, offset + b * n) for a, b in runs]
            offset += n * self.count
        return spans

    def _layer(self, affine, h, extra=None):
        """h ↦ dropout(σ(W h + b [+ extra])), and what its backward needs."""
        z = affine(h)
        if extra is not None:
            z += extra
        a = self.act(z)
        if not self.dropping:
            return a, (h, z, a, None)
        # The very draws of torch's dropout on the CPU, so that a seed gives one mask.
        mask = torch.empty_like(a).bernoulli_(self.keep).div_(self.keep)
        return a * mask, (h, z, a, mask)

    def _backward(self, block, saved, g, need_input):
        """Weight gradients of one block from ``g`` = d loss / d its output; returns
        d loss / d its input when ``need_input``."""
        if len(block) == 1:
            layer = block[0]
            gz, gz_t = self._pre_activation_grad(g, saved, layer)
            layer.grads(gz, saved[0], gz_t)
            return layer.input_grad(gz) if need_input else None
        (first, second, projector), (one, two) = block, saved
        x = one[0]
        gz2, gz2_t = self._pre_activation_grad(g, two, second)
        second.grads(gz2, two[0], gz2_t)
        gz1, gz1_t = self._pre_activation_grad(second.input_grad(gz2), one, first)
        first.grads(gz1, x, gz1_t)
        if projector is not None:
            projector.grads(gz2, x, gz2_t)
        if not need_input:
            return None
        return first.input_grad(gz1).add_(gz2 if projector is None else projector.input_grad(gz2))

    def _pre_activation_grad(self, g, saved, layer):
        """d loss / d the pre-activation of ``layer``, and its transpose."""
        _, z, a, mask = saved
        out, out_t = layer.scratch(g)
        self.act_backward(g if mask is None else g * mask, z, a, out)
        return out, out_t


class _Plain:
    """:meth:`FastStep.gradients` of the commonest network (plain layers, one network, no
    dropout, on the CPU) written straight: the very products and kernels of the general step, in
    its order, so the same bits, without its nested calls per layer (a step of a hundred
    microseconds at batch 32 spends about eight in them). The products write into tensors made
    once per batch size, with every view the step needs: making a view costs a dispatch, about a
    microsecond, and a new tensor a fraction of one."""

    def __init__(self, step):
        self.act, self.act_backward = step.act, step.act_backward
        self.output_grad = step.output_grad
        self.into = getattr(step.output_grad, "into", False)  # it takes the head's scratch
        self.layers = [(a.w, a.wt, a.b, a.gw, a.gb) for (a,) in step.blocks]
        self.head = step.head
        self._made = {}

    def _scratch(self, n):
        """For ``n`` rows: each layer's pre-activation, its gradient and that one's transpose,
        and the gradient of the layer's input; the head's output with its flat view, the
        output gradient with its transpose, and the gradient of the head's input."""
        found = self._made.get(n)
        if found is None:
            def new(w, *columns):  # n rows of w's dtype
                return torch.empty(n, *columns, dtype=w.dtype)
            layers = []
            for w, *_ in self.layers:
                gz = new(w, w.shape[0])
                layers.append((new(w, w.shape[0]), gz, gz.mT, new(w, w.shape[1])))
            w = self.head.w
            out, g = new(w, w.shape[0]), new(w, w.shape[0])
            found = self._made[n] = (layers, (out, out.view(-1), g, g.mT, new(w, w.shape[1])))
        return found

    def __call__(self, x, y):
        scratch, (out, flat, g, g_t, g_in) = self._scratch(x.shape[0])
        h, saved = x, []
        for (_, wt, b, _, _), (z, _, _, _) in zip(self.layers, scratch):
            torch.addmm(b, h, wt, out=z)
            a = self.act(z)
            saved.append((h, a))
            h = a
        head = self.head
        torch.addmm(head.b, h, head.wt, out=out)
        if self.into:
            loss, g = self.output_grad(out, y, flat, g)
        else:
            loss, g = self.output_grad(out, y)
            g_t = g.mT
        torch.mm(g_t, h, out=head.gw)
        torch.sum(g, dim=-2, out=head.gb)
        g = torch.mm(g, head.w, out=g_in)
        for k in range(len(self.layers) - 1, -1, -1):
            w, _, _, gw, gb = self.layers[k]
            h, a = saved[k]
            z, gz, gz_t, g_in = scratch[k]
            self.act_backward(g, z, a, gz)
            torch.mm(gz_t, h, out=gw)
            torch.sum(gz, dim=-2, out=gb)
            if k:  # d loss / d the network's input: none
                g = torch.mm(gz, w, out=g_in)
        return loss


class _Affine:
    """A linear layer's weight and bias as detached views, and their gradients; of members
    (``stacked``: one ``linear`` each, however many), views with a leading member axis."""

    __slots__ = ("w", "b", "gw", "gb", "wt", "b_rows", "stacked", "_scratch")

    def __init__(self, linears, stacked):
        first, count = linears[0], len(linears) if stacked else None
        self.w, self.gw = _members(first.weight.detach(), first.weight.grad, count)
        has_bias = first.bias is not None
        self.b, self.gb = _members(first.bias.detach(), first.bias.grad, count) \
            if has_bias else (None, None)
        # Of several members: Wᵀ and b as the batched products take them, views made once.
        self.wt = self.w.mT
        self.stacked = self.w.dim() == 3  # asked at every product: a flag, not a call
        self.b_rows = self.b.unsqueeze(1) if has_bias and self.stacked else None
        self._scratch = {} if self.w.device.type == "cpu" else None

    def scratch(self, like):
        """A tensor shaped as ``like`` for the gradient of this layer's pre-activation, and
        its transpose, which the weight gradient's product takes. On the CPU one per shape,
        made once, with its transpose: making a view costs about as much as the arithmetic of
        a bias at a batch of 32. On a GPU a new one each time, so that a CUDA graph records
        its own."""
        if self._scratch is None:
            out = torch.empty_like(like)
            return out, out.mT
        found = self._scratch.get(like.shape)
        if found is None:
            out = torch.empty_like(like)
            found = self._scratch[like.shape] = (out, out.mT)
        return found

    def __call__(self, h):
        """W h + b, for each member its own."""
        if not self.stacked:  # F.linear's own addmm, without its transpose made each call
            return torch.mm(h, self.wt) if self.b is None else torch.addmm(self.b, h, self.wt)
        if self.b is None:
            return torch.bmm(h, self.wt)
        return torch.bmm(h, self.wt).add_(self.b_rows)

    def input_grad(self, g):
        """d loss / d h = g W; of several members a batched product straight away (matmul
        would broadcast and copy first)."""
        return torch.bmm(g, self.w) if self.stacked else torch.mm(g, self.w)

    def grads(self, g, h, g_t=None):
        """d loss / d W = gᵀ h and d loss / d b = Σ g, written into the existing ``.grad``;
        ``g_t``, where given, is gᵀ already made."""
        g_t = g.mT if g_t is None else g_t
        if self.stacked:
            torch.bmm(g_t, h, out=self.gw)
        else:
            torch.mm(g_t, h, out=self.gw)
        if self.gb is not None:
            torch.sum(g, dim=-2, out=self.gb)


def _keep(models, flat):
    """The share of units each member keeps (1 - its dropout rate): a number where all members
    agree, else a (members × 1 × 1) tensor; and whether any drops units."""
    keeps = [1.0 - m.config.dropout for m in models]
    dropping = any(k < 1 for k in keeps)
    if len(set(keeps)) == 1:
        return keeps[0], dropping
    return torch.tensor(keeps, dtype=flat.dtype, device=flat.device).view(-1, 1, 1), dropping


SMALL_VIEW = 32768  # elements: torch's own grain below which elementwise kernels use one thread


class Views:
    """Views of the ``spans`` (:meth:`FastStep.spans`: some members' ranges) of flat tensors of
    the step's layout (the parameter, the weight average), made once per tensor, as the same
    tensors come every step."""

    def __init__(self, spans):
        self.spans = spans
        # The CPU kernels open a parallel region for every tensor however small, which for
        # views this small costs more than it gains: these run on one thread.
        self.small = max(b - a for a, b in spans) < SMALL_VIEW
        self._made = {}

    def __call__(self, t):
        found = self._made.get(id(t))
        if found is None or found[0] is not t:
            found = self._made[id(t)] = (t, [t[a:b] for a, b in self.spans])
        return found[1]


class MemberRates:
    """Learning rates and weight decays of the members where they differ. The fused kernel
    takes one of each, so it computes the unscaled step (lr 1) into ``scratch``, the weight
    decay added to the gradient here, value by value its member's; then each value moves by
    its own member's rate: one kernel call however many settings there are (a call per
    setting costs as much as the step again). ``scale`` multiplies every rate (the cosine
    schedule's factor). With weight decays the gradient holds the decayed gradient after the
    step (nothing reads it before the next step writes it anew)."""

    def __init__(self, step, lrs, weight_decays):
        self.lr = step.member_values(lrs)
        self.decay = step.member_values(weight_decays) if any(weight_decays) else None
        self.scale = 1.0
        self.scratch = torch.zeros_like(self.lr)


@contextlib.contextmanager
def one_thread(small, device):
    """One CPU thread for the duration where ``small`` (:attr:`Views.small`) on the CPU."""
    threads = torch.get_num_threads()
    if not small or threads == 1 or device.type != "cpu":
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _members(value, grad, count):
    """The parameter and gradient views of one network (``count`` None), or of ``count``
    members with a leading member axis: :func:`flatten` puts each member's right after the one
    before."""
    if count is None:
        return value, grad
    return tuple(t.as_strided((count, *t.shape), (t.numel(), *t.stride()))
                 for t in (value, grad))


def _identity(block):
    return isinstance(block.shortcut, torch.nn.Identity)


def flatten(models):
    """One parameter holding all of ``models``' (networks of one shape), whose own become views
    into it: parameter by parameter, each member's values right after the one before."""
    groups = list(zip(*(m.parameters() for m in models)))
    flat = torch.nn.Parameter(torch.cat([p.detach().reshape(-1) for g in groups for p in g]))
    flat.grad = torch.zeros_like(flat)
    offset = 0
    for group in groups:
        for p in group:
            n = p.numel()
            p.data = flat.data[offset:offset + n].view_as(p)
            p.grad = flat.grad[offset:offset + n].view_as(p)
            offset += n
    return flat


def _update(p, data, optimizer, lr=None, rates=None):
    """``optimizer.step()`` for the one parameter ``p`` (whose detached view is ``data``),
    straight to the fused kernel that torch.optim's fused Adam and SGD call, with their state in
    their own layout (so that ``state_dict`` and resuming work as ever), minus their per-call
    Python. The step count is a device tensor, so that a CUDA graph can record the update.
    With ``rates`` (:class:`MemberRates`), each member at its own lr and weight decay."""
    group, state = optimizer.param_groups[0], optimizer.state[p]
    adam = isinstance(optimizer, torch.optim.Adam)
    first = optimizer_kernels.start_state(state, p, group, adam)
    if rates is None:
        optimizer_kernels.kernel(adam, group, [state], first,
                                 group["lr"] if lr is None else lr, group["weight_decay"],
                                 [data], [p.grad])
        return
    if lr is not None:
        raise ValueError("members' own rates take their schedule's scale, not a learning rate")
    if rates.decay is not None:  # L2 decay, as the kernels add it to the gradient
        p.grad.addcmul_(data, rates.decay)
    step = rates.scratch.zero_()
    optimizer_kernels.kernel(adam, group, [state], first, 1.0, 0.0, [step], [p.grad])
    data.addcmul_(step, rates.lr, value=rates.scale)


def _per_row():
    """A function of a minibatch's outputs that gives 1/n and 2/n as tensors (n rows), and
    minus ones of the shape of one output column, made once for each shape (of the one dtype
    and device of a step's outputs): a Python number in an operation costs a tensor made anew
    each step."""
    constants = {}

    def per_row(out):
        key = out.shape  # of one dtype and device: a step's outputs are its parameters'
        if key not in constants:
            n = out.shape[-2]
            constants[key] = (torch.tensor(1.0 / n, dtype=out.dtype, device=out.device),
                              torch.tensor(2.0 / n, dtype=out.dtype, device=out.device),
                              torch.full((*out.shape[:-1], 1), -1.0, dtype=out.dtype,
                                         device=out.device))
        return constants[key]
    return per_row


def _output_grad(task):
    """(loss, d loss / d output) for the task's loss on a minibatch; with a leading member axis
    one loss per member, each averaged over its own rows."""
    if task.weighted:
        return _weighted_output_grad(task)
    per_row = _per_row()
    if task.kind == "regress":
        if getattr(task, "gaussian", False):
            return lambda out, y: _gaussian(out, y, per_row(out)[0])

        def mse(out, y, flat=None, into=None):
            """Squared error summed over outputs, mean over the batch; ``flat`` (``out`` as
            one row) and ``into`` (for the gradient), where given, are made once by the
            caller, as a view costs a dispatch."""
            diff = out.sub_(y)  # the outputs are needed no more
            inverse, twice, _ = per_row(out)
            if out.dim() == 3:
                return (diff * diff).sum(dim=(1, 2)) * inverse, diff * twice
            flat = diff.view(-1) if flat is None else flat
            return torch.dot(flat, flat) * inverse, torch.mul(diff, twice, out=into)
        mse.into = True  # it takes ``flat`` and ``into``
        return mse
    if task.output == "sigmoid":
        def bce(out, y):
            z, t = out[..., 0], y.to(out.dtype)
            if out.dim() == 3:
                loss = F.binary_cross_entropy_with_logits(z, t, reduction="none").mean(dim=1)
            else:
                loss = F.binary_cross_entropy_with_logits(z, t)
            return loss, ((torch.sigmoid(z) - t) * per_row(out)[0]).unsqueeze(-1)
        return bce

    def cross_entropy(out, y):  # softmax minus the one-hot target, over the batch
        log_p = torch.log_softmax(out, dim=-1)
        inverse, _, minus_ones = per_row(out)
        g = log_p.exp().scatter_add_(-1, y.unsqueeze(-1), minus_ones)
        if out.dim() == 3:
            return -log_p.gather(-1, y.unsqueeze(-1)).squeeze(-1).mean(dim=1), g * inverse
        return F.nll_loss(log_p, y), g * inverse
    return cross_entropy


def _weighted_output_grad(task):
    """:func:`_output_grad` of labels that carry each row's event weight w
    (:func:`fcnn_cli.network.tasks.pack`): the mean over the rows of w times the row's loss,
    and so each row's gradient times w. Written for few operations (``narrow`` rather than
    indexing, in place where it can): at a batch of 32 each one costs about 2 µs of a step's
    100."""
    per_row = _per_row()
    if task.kind == "regress":
        if getattr(task, "gaussian", False):
            def weighted_gaussian(out, y):
                w = y[..., -1:]
                return _gaussian(out, y[..., :-1], w * per_row(out)[0], w)
            return weighted_gaussian

        def weighted_mse(out, y):
            k = out.shape[-1]
            diff = out - y.narrow(-1, 0, k)
            wdiff = diff * y.narrow(-1, k, 1)
            inverse, twice, _ = per_row(out)
            if out.dim() == 3:
                loss = (wdiff * diff).sum(dim=(1, 2)) * inverse
            else:
                loss = torch.dot(wdiff.view(-1), diff.view(-1)) * inverse
            return loss, wdiff.mul_(twice)
        return weighted_mse

    def weighted_classification(out, y):
        inverse, _, minus_ones = per_row(out)
        index = y.narrow(-1, 0, 1).long()
        scale = y.narrow(-1, 1, 1) * inverse  # w / n
        if task.output == "sigmoid":
            z, t = out[..., 0], y[..., 0]
            rows = F.binary_cross_entropy_with_logits(z, t, reduction="none").unsqueeze(-1)
            loss = (rows * scale).sum(dim=(-2, -1))
            return loss, (torch.sigmoid(z) - t).unsqueeze(-1).mul_(scale)
        log_p = torch.log_softmax(out, dim=-1)
        picked = log_p.gather(-1, index)  # before exp_ overwrites log_p
        g = log_p.exp_().scatter_add_(-1, index, minus_ones).mul_(scale)
        if out.dim() == 3:
            return (picked * scale).sum(dim=(1, 2)).neg_(), g
        return torch.dot(picked.view(-1), scale.view(-1)).neg_(), g
    return weighted_classification


def _gaussian(out, y, inverse, w=None):
    """The Gaussian negative log-likelihood of tasks.Regression and its gradient: the first
    half of the outputs are the means, the second the variances through a softplus. With
    ``w`` (rows × 1, event weights), each row's terms count w times."""
    mean, raw = out.chunk(2, dim=-1)
    var = F.softplus(raw) + MIN_VARIANCE
    r = mean - y
    r_over_var = r / var
    terms = 0.5 * (var.log() + r * r_over_var) + HALF_LOG_TWO_PI
    if w is not None:  # event weights; ``inverse`` is w / n then
        terms = terms * w
    loss = terms.sum(dim=-1).mean(dim=-1)
    g_var = 0.5 * (1.0 - r * r_over_var) / var * torch.sigmoid(raw)
    return loss, torch.cat([r_over_var, g_var], dim=-1) * inverse
