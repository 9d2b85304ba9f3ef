"""Geiger's method: earthquake location by iterative least squares on the arrival times,
vectorised over events with numpy.

The unknowns are the epicentre x, y, the depth z where it is solved for, and the origin time
where it is unknown. Each step linearises the travel times of the velocity model about the
current hypocentre (their derivatives come with them, :func:`fcnn_cli.data.velocity.
first_arrivals`), weights each pick by one over its phase's timing noise, leaves out missing
picks (NaN), and solves the normal equations of every event at once, damped a little
(Levenberg–Marquardt) and with the horizontal step bounded, so that a start far from the
answer does not throw the event out of the region. It starts at the station of the earliest
P pick. An event that ends with a misfit far beyond its noise, or outside the region, is
started again from the best node of a grid over the region, and keeps the better answer.
"""

from dataclasses import dataclass

import numpy as np

from fcnn_cli.data.velocity import first_arrivals

STEPS = 60  # Geiger steps at most; noise-free picks converge in about ten
CONVERGED = 1e-7  # km (and s): a step this small ends an event's iterations
MAX_STEP = 20.0  # km: the largest horizontal step, bounding the linearisation's reach
# Relative damping of the normal equations' diagonal: where each event's starts, its least,
# and beyond which an event that finds no lower misfit stops.
DAMPING, MIN_DAMPING, MAX_DAMPING = 1e-3, 1e-12, 1e8
RIDGE = 1e-12  # absolute: an unknown no pick constrains (every pick missing) stays put
GRID = 25  # nodes a side of the fallback grid (and DEPTHS levels)
DEPTHS = 6
DIVERGED = 1.5  # RMS of the weighted residuals (about 1 at the answer) beyond which an
# event is located again
NOISELESS = 1e-3  # s: the timing error assumed of noise-free picks, for the weights' scale
VALUES = 1 << 22  # residuals a grid search holds at once (32 MiB): events × nodes × picks


@dataclass(frozen=True)
class Problem:
    """What locating needs beside the picks: the stations (positions (k, 2), elevations (k,)
    km), the velocity model, the timing noise of P and S (s), whether z and the origin time
    are unknowns, and the region: ``bounds`` ((x min, x max), (y min, y max), (z min, z max))."""

    positions: np.ndarray
    elevations: np.ndarray
    model: object
    noise: tuple
    solve_depth: bool
    origin_unknown: bool
    bounds: tuple

    @property
    def weights(self):
        """One over each phase's timing noise (P, S), the noise-free floored."""
        return 1 / np.maximum(np.asarray(self.noise, np.float64), NOISELESS)

    def times(self, hypocentres):
        """Predicted travel times (n, 2k), P then S, and their derivatives by x, y, z."""
        d = hypocentres[:, None, :2] - self.positions[None]
        r = np.hypot(d[..., 0], d[..., 1])
        z = np.broadcast_to(hypocentres[:, 2:3], r.shape)
        out = [first_arrivals(self.model, phase, r, z) for phase in ("P", "S")]
        t = np.concatenate([o[0] + self.elevations / top for o, top in
                            zip(out, (self.model.vp[0], self.model.vs[0]))], axis=1)
        dr = np.concatenate([o[1] for o in out], axis=1)
        dz = np.concatenate([o[2] for o in out], axis=1)
        along = np.concatenate([d, d], axis=1) / np.maximum(np.concatenate([r, r], 1), 1e-9)[
            ..., None]
        return t, np.stack([dr * along[..., 0], dr * along[..., 1], dz], axis=-1)


def locate(picks, problem):
    """Hypocentres (n, 3: x, y, z km) and origin times (n,) of events whose P then S arrival
    times at the k stations are the columns of ``picks`` (n, 2k; NaN where missing)."""
    picks = np.asarray(picks, dtype=np.float64)
    weight = np.repeat(problem.weights, len(problem.positions))
    seen = np.isfinite(picks)
    start = _start(picks, seen, problem)
    hypo, t0, misfit = _geiger(picks, seen, weight, start, problem)
    lost = np.flatnonzero(~(np.isfinite(misfit) & (misfit < DIVERGED)
                            & _inside(hypo, problem.bounds)))
    if len(lost):
        # Again from the best node of the grid, at each of its depths: the picks of an event
        # outside the network hardly fix its depth, and a start too shallow or too deep can
        # end at the other end of the range.
        starts = _grid_start(picks[lost], seen[lost], weight, problem)
        levels = _depths(problem)
        starts = np.repeat(starts, len(levels), axis=0)
        starts[:, 2] = np.tile(levels, len(lost))
        again = np.repeat(lost, len(levels))
        grid_hypo, grid_t0, grid_misfit = _geiger(picks[again], seen[again], weight, starts,
                                                  problem)
        grid_misfit = np.where(np.isfinite(grid_misfit), grid_misfit, np.inf)
        best = np.argmin(grid_misfit.reshape(len(lost), -1), axis=1)
        pick = np.arange(len(lost)) * len(levels) + best
        better = ~(grid_misfit[pick] >= misfit[lost])  # NaN in the first answer: the grid's
        hypo[lost[better]], t0[lost[better]] = grid_hypo[pick[better]], grid_t0[pick[better]]
    return hypo, t0


def _start(picks, seen, problem):
    """At the station of each event's earliest P pick (its earliest pick where it has no P),
    at the middle of the depth range."""
    k = len(problem.positions)
    p_seen = seen[:, :k].any(axis=1)
    first = np.where(p_seen, np.argmin(np.where(seen[:, :k], picks[:, :k], np.inf), axis=1),
                     np.argmin(np.where(seen, picks, np.inf), axis=1) % k)
    z = np.full(len(picks), np.mean(problem.bounds[2]) if problem.solve_depth else 0.0)
    return np.column_stack([problem.positions[first], z])


def _origin(residual, seen, weight):
    """The weighted least-squares origin time of each event's residuals (picks − travel
    times); 0 where no pick is seen."""
    w2 = np.where(seen, weight * weight, 0.0)
    return (np.where(seen, residual, 0.0) * w2).sum(axis=1) / np.maximum(w2.sum(axis=1), 1e-300)


def _geiger(picks, seen, weight, hypo, problem):
    """Iterate Geiger's steps from ``hypo`` (n, 3); returns (hypocentres, origin times, RMS of
    the weighted residuals). Each event keeps its own damping λ (Levenberg–Marquardt): a step
    that lowers its misfit is taken and λ falls tenfold, one that raises it is not and λ
    rises tenfold, so that an event whose depth the picks hardly fix does not swing between
    the bounds."""
    hypo = hypo.astype(np.float64, copy=True)
    columns = [0, 1] + ([2] if problem.solve_depth else [])
    damping = np.full(len(picks), DAMPING)
    t, grad = problem.times(hypo)
    cost = _cost(picks, seen, weight, t, problem)
    active = np.arange(len(picks))
    for _ in range(STEPS):
        if not len(active):
            break
        move = _step(picks[active], seen[active], weight, t[active], grad[active],
                     damping[active], problem, columns)
        trial = hypo[active]
        trial[:, columns] += move
        if problem.solve_depth:
            trial[:, 2] = np.clip(trial[:, 2], *problem.bounds[2])
        t_trial, grad_trial = problem.times(trial)
        cost_trial = _cost(picks[active], seen[active], weight, t_trial, problem)
        better = cost_trial <= cost[active]
        kept = active[better]
        hypo[kept], t[kept], grad[kept] = trial[better], t_trial[better], grad_trial[better]
        cost[kept] = cost_trial[better]
        damping[active] = np.where(better, np.maximum(damping[active] / 10, MIN_DAMPING),
                                   damping[active] * 10)
        done = (np.abs(move).max(axis=1) < CONVERGED) | (damping[active] > MAX_DAMPING)
        active = active[~done]
    t0 = (_origin(picks - t, seen, weight) if problem.origin_unknown else
          np.zeros(len(picks)))
    return hypo, t0, np.sqrt(cost / np.maximum(seen.sum(axis=1), 1))


def _step(picks, seen, weight, t, grad, damping, problem, columns):
    """The damped Gauss–Newton step of each event's unknowns in ``columns`` (the origin
    time's, where it is one, solved with them and dropped: it is found again from the
    residuals)."""
    residual = picks - t
    if problem.origin_unknown:
        residual = residual - _origin(residual, seen, weight)[:, None]
    g = grad[..., columns]
    if problem.origin_unknown:
        g = np.concatenate([g, np.ones(g.shape[:2] + (1,))], axis=-1)
    w = np.where(seen, weight, 0.0)
    g = g * w[..., None]
    b = np.where(seen, residual, 0.0) * w
    normal = np.einsum("npi,npj->nij", g, g)
    diagonal = np.einsum("nii->ni", normal)
    normal = normal + np.eye(g.shape[-1]) * (damping[:, None] * diagonal + RIDGE)[:, :, None]
    step = np.linalg.solve(normal, np.einsum("npi,np->ni", g, b)[..., None])[..., 0]
    move = step[:, :len(columns)]
    reach = np.hypot(move[:, 0], move[:, 1])
    return move * np.minimum(1.0, MAX_STEP / np.maximum(reach, 1e-300))[:, None]


def _cost(picks, seen, weight, t, problem):
    """Each event's sum of squared weighted residuals over its seen picks, at its best origin
    time where that is unknown."""
    residual = picks - t
    if problem.origin_unknown:
        residual = residual - _origin(residual, seen, weight)[:, None]
    r = np.where(seen, residual * weight, 0.0)
    return (r * r).sum(axis=1)


def _inside(hypo, bounds, margin=0.5):
    """Within the region, widened by ``margin`` of its size on each side."""
    ok = np.isfinite(hypo).all(axis=1)
    for axis, (low, high) in enumerate(bounds[:2]):
        pad = margin * (high - low)
        ok &= (hypo[:, axis] >= low - pad) & (hypo[:, axis] <= high + pad)
    return ok


def _depths(problem):
    return np.linspace(*problem.bounds[2], DEPTHS) if problem.solve_depth else np.zeros(1)


def _grid_start(picks, seen, weight, problem):
    """The node of a grid over the region with the least misfit, for each event."""
    axes = [np.linspace(*problem.bounds[0], GRID), np.linspace(*problem.bounds[1], GRID),
            _depths(problem)]
    nodes = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    times = problem.times(nodes)[0]  # (nodes, 2k): the same for every event
    best = np.empty(len(picks), dtype=np.int64)
    w2 = weight * weight
    events = max(1, VALUES // times.size)
    for s in range(0, len(picks), events):
        obs, ok = picks[s:s + events, None, :], seen[s:s + events, None, :]
        residual = np.where(ok, obs - times[None], 0.0)
        if problem.origin_unknown:
            mean = (residual * w2).sum(-1) / np.maximum((ok * w2).sum(-1), 1e-300)
            residual = np.where(ok, residual - mean[..., None], 0.0)
        best[s:s + events] = np.argmin((residual * residual * w2).sum(-1), axis=1)
    return nodes[best]
