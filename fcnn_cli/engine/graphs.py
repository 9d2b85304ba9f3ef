"""CUDA graphs for the autograd-free step: a whole training step recorded once, then replayed.

At a small network and batch a GPU step is dozens of tiny kernels launched one by one
from Python, and the GPU waits on the launches; replayed from a CUDA graph the step is one
launch. A graph replays the very kernels it recorded on the very memory, so everything that
changes from step to step is read from device memory:

- the rows of the step are gathered from the training tensors (already on the GPU) through the
  epoch's row order, held in a fixed buffer, at positions the graph computes from a step
  counter on the device, which it also advances;
- the learning rate and the weight average's weight of every step of the epoch are computed on
  the host exactly as the eager loop computes them, copied once an epoch into device buffers,
  and read there at the counter (the fused optimiser kernels take a tensor learning rate, and
  their step count is a device tensor already);
- the loss is summed into a device tensor, read every 64 steps as the eager loop reads its own.

Labels that carry event weights (:func:`fcnn_cli.network.tasks.pack`) are gathered as any
labels are, their weights with them: weighted steps are graphed as well.

The last, shorter minibatch of an epoch runs the same code eagerly rather than through a graph
of its own shape. Before the capture, a few steps run eagerly on a side stream, as torch's
documentation asks, so that what is made lazily (cuBLAS's handle and workspace, the optimiser's
state, the loss's constants) exists before recording; they are real steps of training.

Only the fast path is graphed. The autograd path (batch norm, SELU's alpha-dropout, class
weights, bf16) is not: batch norm's running statistics and autograd's own buffers would have to
be captured with torch's graphed callables, and the optimiser step made capturable besides; at
the batch sizes where those networks are worth a GPU the launches no longer dominate.
"""

import logging

import torch

from fcnn_cli.core.errors import first_line

log = logging.getLogger(__name__)

WARMUP_STEPS = 3  # eager steps before the capture


class GraphedSteps:
    """The steps of each epoch for a :class:`~fcnn_cli.engine.fastpath.FastStep` on the rows ``x``,
    ``y`` (on the device), in minibatches of ``batch``.

    ``begin(order, lrs, weights)`` starts an epoch: its row order, and each step's learning rate
    and weight-average weight (``weights`` None without an average); then ``step(rows)`` takes
    each minibatch in turn, and ``total`` holds the loss summed over the rows so far. Without a
    GPU (or with ``capture=False``) every step runs eagerly: the same arithmetic, which lets
    tests compare the two.
    """

    def __init__(self, fast, optimizer, average, x, y, batch, capture=True):
        self.fast, self.optimizer, self.average = fast, optimizer, average
        self.x, self.y, self.batch = x, y, batch
        device, steps = x.device, -(-len(x) // batch)
        self.order = torch.zeros(len(x), dtype=torch.long, device=device)
        self.positions = torch.arange(batch, device=device)
        self.k = torch.zeros(1, dtype=torch.long, device=device)  # the step within the epoch
        self.lrs = torch.zeros(steps, dtype=torch.float32, device=device)  # the kernels' type
        self.weights = torch.zeros(steps, dtype=fast.flat.dtype, device=device)
        self.total = torch.zeros((), device=device)
        self.capture = capture and device.type == "cuda"
        self.graph, self.warmed = None, 0

    def begin(self, order, lrs, weights=None):
        self.order.copy_(order)
        self.lrs[:len(lrs)].copy_(torch.tensor(lrs, dtype=torch.float32))
        if weights is not None:
            self.weights[:len(weights)].copy_(torch.tensor(weights, dtype=self.weights.dtype))
        self.k.zero_()
        self.total.zero_()

    def step(self, rows):
        if rows < self.batch:
            self._step(self.positions[:rows])
        elif self.graph is not None:
            self.graph.replay()
        elif not self.capture:
            self._step(self.positions)
        elif self.warmed < WARMUP_STEPS:
            self._warm_up()
        else:
            self._record()
        if self.average:
            self.average.updates += 1  # the host's count: a replay runs no Python

    def _step(self, positions):
        """One step, all on the device: gather, gradients, update, average, loss sum."""
        rows = self.order.index_select(0, positions + self.k * self.batch)
        loss = self.fast.gradients(self.x.index_select(0, rows), self.y.index_select(0, rows))
        self.fast.update(self.optimizer, lr=self.lrs.index_select(0, self.k).view(()))
        if self.average:
            self.average.blend(self.weights.index_select(0, self.k).view(()))
        self.total.add_(loss.detach(), alpha=len(positions))
        self.k.add_(1)

    def _warm_up(self):
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self._step(self.positions)
        torch.cuda.current_stream().wait_stream(side)
        self.warmed += 1

    def _record(self):
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                self._step(self.positions)
        except RuntimeError as e:  # recording runs nothing: the state is as it was
            log.warning("the training step could not be recorded as a CUDA graph (%s); "
                        "training goes on without", first_line(e))
            self.capture = False
            self._step(self.positions)
            return
        self.graph = graph
        graph.replay()  # recording ran nothing: this is the step itself


def usable(state, device, world):
    """Whether training graphs its steps: the fast path, on a GPU, in one process."""
    return state.fast is not None and device.type == "cuda" and not world.distributed
