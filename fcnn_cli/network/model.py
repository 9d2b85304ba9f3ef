"""The fully-connected ``nn.Module`` that a :class:`~fcnn_cli.core.config.NetConfig` describes."""

import torch
from torch import nn

from fcnn_cli.core import config
from fcnn_cli.core.config import NetConfig
from fcnn_cli.network import embedding, levels

__all__ = ["MLP", "Ensemble", "NetConfig", "Dense", "ResidualBlock"]

ACTIVATIONS = {name: getattr(nn, module) for name, module in config.ACTIVATIONS.items()}


class Dense(nn.Sequential):
    """One hidden layer: linear, optional batch norm, activation, optional dropout."""

    def __init__(self, n_in, n_out, cfg):
        layers = [nn.Linear(n_in, n_out)]
        if cfg.batchnorm:
            layers.append(nn.BatchNorm1d(n_out))
        layers.append(ACTIVATIONS[cfg.activation]())
        if cfg.dropout:
            layers.append(_dropout(cfg))
        super().__init__(*layers)

    def layers(self):
        return [(self[0], self[2] if isinstance(self[1], nn.BatchNorm1d) else self[1])]


class ResidualBlock(nn.Module):
    """Two layers with a shortcut: z = σ(W₂ σ(W₁x + b₁) + b₂ + S x).

    S is the identity where the widths match, else a learned linear projector W_s (no bias).
    """

    def __init__(self, n_in, width, cfg):
        super().__init__()
        self.linear1 = nn.Linear(n_in, width)
        self.norm1 = nn.BatchNorm1d(width) if cfg.batchnorm else nn.Identity()
        self.act1 = ACTIVATIONS[cfg.activation]()
        self.linear2 = nn.Linear(width, width)
        self.norm2 = nn.BatchNorm1d(width) if cfg.batchnorm else nn.Identity()
        self.act2 = ACTIVATIONS[cfg.activation]()
        self.shortcut = nn.Identity() if n_in == width else nn.Linear(n_in, width, bias=False)
        self.drop = _dropout(cfg) if cfg.dropout else nn.Identity()

    def layers(self):
        return [(self.linear1, self.act1), (self.linear2, self.act2)]

    def forward(self, x):
        h = self.drop(self.act1(self.norm1(self.linear1(x))))
        return self.drop(self.act2(self.norm2(self.linear2(h)) + self.shortcut(x)))


class MLP(nn.Module):
    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.config = cfg
        # Identity without an embedding: the parameters, and their names, are a plain network's.
        # NetConfig allows one embedding at most: of the numbers, or of categorical levels.
        self.embed = (levels.LevelEmbedding(cfg) if cfg.levels else nn.Identity()
                      if cfg.embed == "none" else embedding.Embedding(cfg))
        layers, n = [], embedding.inputs(cfg)
        if cfg.arch == "resnet":
            if cfg.depth % 2:
                layers.append(Dense(n, cfg.width, cfg))
                n = cfg.width
            for _ in range(cfg.depth // 2):
                layers.append(ResidualBlock(n, cfg.width, cfg))
                n = cfg.width
        else:
            for _ in range(cfg.depth):
                layers.append(Dense(n, cfg.width, cfg))
                n = cfg.width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(n, cfg.n_out)
        self.reset_parameters()

    def reset_parameters(self):
        """Weights from the configured normal distribution, biases zero (the embedding has no
        nn.Linear: it keeps its own)."""
        for m in self.modules():
            # A network built on the meta device (to check a checkpoint's shapes) has no values
            # to draw, and drawing them there would import torch's compiler: a second or more.
            if isinstance(m, nn.Linear) and not m.weight.is_meta:
                fan_out, fan_in = m.weight.shape
                std = {"glorot-normal": (2.0 / (fan_in + fan_out)) ** 0.5,
                       "he": (2.0 / fan_in) ** 0.5,
                       "lecun": (1.0 / fan_in) ** 0.5}[self.config.init]
                nn.init.normal_(m.weight, 0.0, std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def layers(self):
        """(linear, activation) of every hidden layer in order, then (head, None)."""
        return [pair for block in self.body for pair in block.layers()] + [(self.head, None)]

    def forward(self, x):
        return self.head(self.body(self.embed(x)))


def _dropout(cfg):
    return nn.AlphaDropout(cfg.dropout) if cfg.arch == "selu" else nn.Dropout(cfg.dropout)


class Ensemble(nn.Module):
    """Members of one :class:`~fcnn_cli.core.config.NetConfig`; the output of rows ``x`` is
    members × rows × outputs."""

    def __init__(self, config, members):
        super().__init__()
        self.config = config
        self.members = nn.ModuleList(members)

    @classmethod
    def build(cls, config, count):
        return cls(config, [MLP(config) for _ in range(count)])

    def __len__(self):
        return len(self.members)

    def forward(self, x):
        return torch.stack([member(x) for member in self.members])
