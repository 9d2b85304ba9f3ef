"""An exponential moving average of the weights in training (Polyak averaging).

With small minibatches the weights jitter around where the loss is low; their running average
sits nearer the middle. Validating and keeping the average instead of the last step's weights
shows (and saves) a better network many epochs earlier: on the earthquake data it reaches a
70 m mean distance in 5-6 epochs where the raw weights need 14-34, for one vector operation
per step.
"""

from contextlib import contextmanager


class WeightAverage:
    """Averages ``tensors`` (parameters, and float buffers such as batch-norm statistics).

    The decay per step is ``decay``, but early on ``(1 + t) / (10 + t)`` after ``t`` updates
    when that is smaller, so the average spans about the last tenth of the steps taken:
    neither anchored at the initial weights nor lagging a short run.
    """

    def __init__(self, tensors, decay):
        # Detached views: the same memory, and no autograd to switch off at every step.
        self.live = [t.detach() for t in tensors if t.is_floating_point()]
        self.average = [t.clone() for t in self.live]
        self.decay = decay
        self.updates = 0

    def update(self):
        self.updates += 1
        self.blend(self.weight(self.updates))

    def weight(self, updates):
        """How far the average moves towards the weights at update number ``updates``."""
        return 1.0 - min(self.decay, (1 + updates) / (10 + updates))

    def next_weights(self, n):
        """:meth:`weight` of each of the next ``n`` updates."""
        return [self.weight(self.updates + j) for j in range(1, n + 1)]

    def blend(self, weight):
        """Move the average towards the weights by ``weight`` (a number, or a tensor on the
        device), without counting an update."""
        for a, t in zip(self.average, self.live):
            a.lerp_(t, weight)

    @contextmanager
    def swapped_in(self):
        """The averaged weights in the network for the duration, the trained ones after."""
        trained = [t.clone() for t in self.live]
        _copy(self.live, self.average)
        try:
            yield
        finally:
            _copy(self.live, trained)

    def state_dict(self):
        return {"updates": self.updates, "average": [a.clone() for a in self.average]}

    def load_state_dict(self, state):
        self.updates = state["updates"]
        _copy(self.average, state["average"])


def _copy(targets, sources):
    for t, s in zip(targets, sources):
        t.copy_(s)
