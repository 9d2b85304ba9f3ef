"""Embeddings of numerical features (Gorishniy et al., "On Embeddings for Numerical Features in
Tabular Deep Learning", NeurIPS 2022): each (scaled) feature, one number, becomes a vector of
``embed_dim`` values of its own before the first layer, which then takes features × embed_dim
inputs.

``linear``: x·w + b, then ReLU, per feature (their "LR"): a piecewise-linear function of each
feature that the first layer combines. ``periodic``: cos and sin of 2π f x for ``k`` learned
frequencies f of each feature, a linear map of its own per feature, then ReLU (their "PLR"):
sharp or oscillating effects of one feature that a network of smooth activations fits slowly.
The frequencies start from a normal distribution of standard deviation σ, truncated at 3σ as
rtdl-num-embeddings draws them.

Each step is a module of its own, with no ``nn.Linear`` inside, so that the network's own
initialisation leaves the embedding's alone and the export's check bounds each step's rounding.
"""

import math

import torch
from torch import nn

from fcnn_cli.network import levels


class Periodic(nn.Module):
    """Rows × features in, rows × features × 2k out: cos(2π f x), then sin(2π f x)."""

    def __init__(self, features, frequencies, sigma):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(features, frequencies))
        if not self.weight.is_meta:  # a network built to check shapes draws nothing
            nn.init.trunc_normal_(self.weight, 0.0, sigma, -3 * sigma, 3 * sigma)

    def angles(self, x):
        return 2 * math.pi * self.weight * x[..., None]

    def forward(self, x):
        angles = self.angles(x)
        return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)


class FeatureLinear(nn.Module):
    """A linear map of its own for each feature's vector: rows × features × n_in in, rows ×
    features × n_out out."""

    def __init__(self, features, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(features, n_in, n_out))
        self.bias = nn.Parameter(torch.empty(features, n_out))
        _uniform(self, n_in)

    def forward(self, h):
        return torch.einsum("...fi,fio->...fo", h, self.weight) + self.bias


class FeatureAffine(nn.Module):
    """x·w + b with a vector w and b of each feature: rows × features in, rows × features ×
    width out."""

    def __init__(self, features, width):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(features, width))
        self.bias = nn.Parameter(torch.empty(features, width))
        _uniform(self, width)

    def forward(self, x):
        return x[..., None] * self.weight + self.bias


def _uniform(module, n):
    """Weights and biases uniform in ±1/√n, as rtdl-num-embeddings starts them."""
    if not module.weight.is_meta:
        for p in (module.weight, module.bias):
            nn.init.uniform_(p, -n ** -0.5, n ** -0.5)


class Embedding(nn.Sequential):
    """The embedding of NetConfig ``cfg``: rows × features in, rows × (features × embed_dim)
    out, each feature's values side by side."""

    def __init__(self, cfg):
        n, d = cfg.n_in, cfg.embed_dim
        if cfg.embed == "periodic":
            k = cfg.embed_frequencies
            steps = [Periodic(n, k, cfg.embed_sigma), FeatureLinear(n, 2 * k, d)]
        else:
            steps = [FeatureAffine(n, d)]
        super().__init__(*steps, nn.ReLU(), nn.Flatten(-2))


def inputs(cfg):
    """The inputs of the first layer of a network of NetConfig ``cfg``."""
    return levels.inputs(cfg) if cfg.embed == "none" else cfg.n_in * cfg.embed_dim


def work(cfg):
    """Multiply-adds of the embedding of one row: periodic's angles (k a feature) and its
    linear map of each feature's 2k values onto embed_dim; linear's x·w."""
    if cfg.embed == "none":
        return 0
    if cfg.embed == "periodic":
        k = cfg.embed_frequencies
        return cfg.n_in * (k + 2 * k * cfg.embed_dim)
    return cfg.n_in * cfg.embed_dim


def products(cfg):
    """Multiply-adds of one row in each product of a network of NetConfig ``cfg``, input to
    output: the embedding's (where there is one), the first layer's over its widened inputs,
    then the other layers'. What a device and thread count are chosen by."""
    embedded = [work(cfg)] if cfg.embed != "none" else []
    return [*embedded, inputs(cfg) * cfg.width, *[cfg.width ** 2] * (cfg.depth - 1),
            cfg.width * cfg.n_out]


def values_per_row(cfg):
    """The values of one row that the embedding keeps for the backward pass (of levels: the
    vectors that widen the first layer's inputs)."""
    if cfg.embed == "none":
        return levels.inputs(cfg) - cfg.n_in
    per_feature = 2 * cfg.embed_dim
    if cfg.embed == "periodic":
        per_feature += 5 * cfg.embed_frequencies  # the angles, cos, sin, and the two joined
    return cfg.n_in * per_feature
