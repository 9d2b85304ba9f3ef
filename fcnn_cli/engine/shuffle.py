"""A streamed epoch's rows dealt out and mixed: each process's pieces in a seeded order
(:func:`epoch_pieces`), its share of every minibatch (:func:`process_rows`), a buffer that mixes
rows across pieces (:class:`ShuffleBuffer`), and minibatches cut from the chunks that come out
of it (:class:`Taker`)."""


def process_rows(batches, rows, world):
    """The rows this process takes of ``batches`` global minibatches of ``rows`` rows each."""
    share, extra = divmod(rows, world.size)
    return batches * (share + (world.rank < extra))


def epoch_pieces(rng, pieces, world):
    """This process's pieces for one epoch: all of them in a random order, dealt out in turn
    so that each process gets its own (a process left without any takes one of another's)."""
    order = rng.permutation(len(pieces)).tolist()
    mine = order[world.rank::world.size]
    return mine or [order[world.rank % len(order)]]


class Taker:
    """Exactly ``rows`` rows at a time from a stream of (features, labels) chunks, as views
    where a chunk holds them all."""

    def __init__(self, chunks):
        self.chunks, self.x, self.y = chunks, None, None

    def take(self, rows):
        import torch

        xs, ys = [], []
        while rows:
            if self.x is None or not len(self.x):
                self.x, self.y = next(self.chunks)
            xs.append(self.x[:rows])
            ys.append(self.y[:rows])
            self.x, self.y = self.x[rows:], self.y[rows:]
            rows -= len(xs[-1])
        if len(xs) == 1:
            return xs[0], ys[0]
        if not xs:
            return self.x[:0], self.y[:0]
        return torch.cat(xs), torch.cat(ys)


class ShuffleBuffer:
    """Mixes rows across pieces. It holds up to ``size`` rows in a random order and gives
    them out in turn, each replaced by a row coming in; once all have been given out, the
    rows held (by then all new) are put in a new random order. A row thus leaves between
    one and two buffers' worth of rows after it came, at a random place among them, and each
    row costs a copy in, a copy out and its share of one permutation. With ``size`` 0 each
    piece's rows are only mixed among themselves."""

    def __init__(self, size, rng):
        self.size, self.rng = size, rng
        self.x = self.y = None
        self.held = self.cursor = 0

    def add(self, x, y):
        """The rows given out in exchange for ``x``, ``y``: a list of (features, labels)."""
        if not self.size:
            order = self._order(len(x), x.device)
            return [(x[order], y[order])]
        out = []
        while len(x):
            if self.held < self.size:
                x, y = self._fill(x, y)
                continue
            seg = slice(self.cursor, self.cursor + min(self.size - self.cursor, len(x)))
            k = seg.stop - seg.start
            out.append((self.x[seg].clone(), self.y[seg].clone()))
            self.x[seg], self.y[seg] = x[:k], y[:k]
            x, y, self.cursor = x[k:], y[k:], seg.stop
            if self.cursor == self.size:
                self._mix()
        return out

    def _fill(self, x, y):
        """Take rows in until full (then mix them); the rows left over."""
        if self.x is None:
            self.x = x.new_empty((self.size, *x.shape[1:]))
            self.y = y.new_empty((self.size, *y.shape[1:]))
        k = min(self.size - self.held, len(x))
        self.x[self.held:self.held + k], self.y[self.held:self.held + k] = x[:k], y[:k]
        self.held += k
        if self.held == self.size:
            self._mix()
        return x[k:], y[k:]

    def _order(self, n, device):
        import torch

        return torch.from_numpy(self.rng.permutation(n)).to(device)

    def _mix(self):
        order = self._order(self.size, self.x.device)
        self.x, self.y, self.cursor = self.x[order], self.y[order], 0

    def drain(self):
        """The rows still held, in a random order; the buffer is empty after."""
        if not self.held:
            return []
        order = self._order(self.held, self.x.device)
        out = self.x[:self.held][order], self.y[:self.held][order]
        self.x = self.y = None
        self.held = self.cursor = 0
        return [out]
