"""The study's convolutional auto-encoder and β-VAE (Kingma & Welling 2014), and batched no-grad
passes through them: codes, decoded images, prior samples.

Encoder: four strided convolutions (k4 s2 p1, k4 s2 p1, k3 s2 p0, k3 s1 p0, widths 32/64/128/256,
BatchNorm (optional) and LeakyReLU(0.2)) take 28×28 and 32×32 to 1×1, then a linear layer to the
code; images of 64 pixels and more get one more k4 s2 p1 block in front and a last layer twice as
wide (…/256/512), so 64×64 also ends at 1×1. The decoder mirrors it; `output_padding` is derived
from the encoder's sizes so any image size round-trips. Decoders return *logits*: the likelihood
decides what an image is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeGuard

import torch
from torch import nn

from vaelab.config import TrainConfig
from vaelab.distributions import DiagonalGaussian

# (kernel, stride, padding) of the four encoder convolutions, reference architecture.
_LAYERS: tuple[tuple[int, int, int], ...] = ((4, 2, 1), (4, 2, 1), (3, 2, 0), (3, 1, 0))


@dataclass
class ModelOutput:
    """What `forward` returns. Shapes: logits (B, C, H, W); z, mu, log_sigma (B, nz)."""

    logits: torch.Tensor
    z: torch.Tensor
    mu: torch.Tensor
    log_sigma: torch.Tensor | None = None  # None for the deterministic AE


class ConvEncoder(nn.Module):
    """(B, C, H, W) images → (B, outputs)."""

    def __init__(
        self, in_channels: int, image_size: int, channels: list[int], outputs: int, norm: bool
    ) -> None:
        super().__init__()
        self.layers, self.widths = _LAYERS, channels
        if image_size >= 64:  # one more stride-2 block; a 4-width list gains a last, twice as wide
            self.layers = ((4, 2, 1), *_LAYERS)
            self.widths = channels if len(channels) == 5 else [*channels, 2 * channels[-1]]
        blocks: list[nn.Module] = []
        c_in, size = in_channels, image_size
        self.sizes = [size]
        for i, ((k, s, p), c_out) in enumerate(zip(self.layers, self.widths, strict=True)):
            blocks.append(nn.Conv2d(c_in, c_out, k, s, p))
            if norm and i > 0:  # the reference leaves the first convolution un-normalised
                blocks.append(nn.BatchNorm2d(c_out))
            blocks.append(nn.LeakyReLU(0.2))
            c_in, size = c_out, (size + 2 * p - k) // s + 1
            if size < 1:
                raise ValueError(f"image size {image_size} is too small for this encoder")
            self.sizes.append(size)
        self.features = nn.Sequential(*blocks)
        self.to_latent = nn.Linear(c_in * size * size, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)  # (B, C4, s4, s4): 256×1×1 for 28×28 input
        return self.to_latent(h.flatten(1))


class ConvDecoder(nn.Module):
    """(B, nz) codes → (B, C, H, W) logits; mirrors `encoder` (its layers, widths and sizes)."""

    def __init__(
        self, latent_dim: int, out_channels: int, encoder: ConvEncoder, norm: bool
    ) -> None:
        super().__init__()
        layers, channels, sizes = encoder.layers, encoder.widths, encoder.sizes
        c_in, self.top, self.start = channels[-1], channels[-1], sizes[-1]
        self.from_latent = nn.Linear(latent_dim, c_in * self.start * self.start)
        self.input_act = nn.Sequential(
            nn.BatchNorm2d(c_in) if norm else nn.Identity(), nn.LeakyReLU(0.2)
        )
        blocks: list[nn.Module] = []
        outs = [*reversed(channels[:-1]), out_channels]  # 128, 64, 32, C
        for i, (k, s, p) in enumerate(reversed(layers)):
            size_in, size_out = sizes[-1 - i], sizes[-2 - i]
            pad_out = size_out - ((size_in - 1) * s - 2 * p + k)
            blocks.append(nn.ConvTranspose2d(c_in, outs[i], k, s, p, output_padding=pad_out))
            if i < len(layers) - 1:
                if norm:
                    blocks.append(nn.BatchNorm2d(outs[i]))
                blocks.append(nn.LeakyReLU(0.2))
            c_in = outs[i]
        self.features = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.from_latent(z).view(-1, self.top, self.start, self.start)  # (B, 256, 1, 1)
        return self.features(self.input_act(h))


class AutoEncoder(nn.Module):
    """Deterministic AE: x → z (nz) → logits."""

    is_vae = False

    def __init__(
        self,
        latent_dim: int = 64,
        channels: list[int] | None = None,
        image_channels: int = 1,
        image_size: int = 28,
        norm: bool = True,
    ) -> None:
        super().__init__()
        channels = channels or [32, 64, 128, 256]
        self.latent_dim = latent_dim
        self.image_shape = (image_channels, image_size, image_size)
        outputs = 2 * latent_dim if self.is_vae else latent_dim  # a VAE's encoder: [μ, log σ]
        self.encoder = ConvEncoder(image_channels, image_size, channels, outputs, norm)
        self.decoder = ConvDecoder(latent_dim, image_channels, self.encoder, norm)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → the deterministic code (B, nz): an AE's embedding, a VAE's mean μ."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, nz) → logits (B, C, H, W); `torch.sigmoid` gives the image."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        z = self.encode(x)
        return ModelOutput(logits=self.decode(z), z=z, mu=z)


class VAE(AutoEncoder):
    """β-VAE: the encoder predicts μ and log σ of q(z|x) = N(μ, σ²); prior N(0, I)."""

    is_vae = True

    def posterior(self, x: torch.Tensor) -> DiagonalGaussian:
        """(B, C, H, W) → q(z|x): μ (B, nz), log σ (B, nz) clamped to a stable range."""
        return DiagonalGaussian.from_encoder(self.encoder(x))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.posterior(x).mode()

    def forward(self, x: torch.Tensor, sample: bool = True) -> ModelOutput:
        """One reparameterised sample z ~ q(z|x) from torch's global RNG (μ if not `sample`)."""
        q = self.posterior(x)
        z = q.sample() if sample else q.mode()
        return ModelOutput(logits=self.decode(z), z=z, mu=q.mu, log_sigma=q.log_sigma)


def is_vae(model: AutoEncoder) -> TypeGuard[VAE]:
    """`model.is_vae`, typed: the evaluation's test doubles set the flag without subclassing."""
    return model.is_vae


def build_model(cfg: TrainConfig, image_shape: tuple[int, int, int] = (1, 28, 28)) -> AutoEncoder:
    if image_shape[1] != image_shape[2]:
        raise ValueError(f"square images expected, got {image_shape}")
    cls = VAE if cfg.model == "vae" else AutoEncoder
    return cls(cfg.latent_dim, list(cfg.channels), image_shape[0], image_shape[1], cfg.norm)


@torch.no_grad()
def batched(fn: Callable[[torch.Tensor], Any], x: torch.Tensor, bs: int = 1000) -> list[Any]:
    """fn applied to consecutive batches of x's rows (bounded memory), results in order."""
    return [fn(x[i : i + bs]) for i in range(0, len(x), bs)]


def decode_images(model: AutoEncoder, z: torch.Tensor) -> torch.Tensor:
    """Decoded image means in [0, 1] (sigmoid of logits) for codes (N, nz), batched."""
    return torch.cat(batched(lambda b: torch.sigmoid(model.decode(b)), z, 2000))


def codes(model: AutoEncoder, x: torch.Tensor) -> tuple[torch.Tensor, DiagonalGaussian | None]:
    """(μ (N, nz), q(z|x) or None for an AE): each image's deterministic code and posterior."""
    if is_vae(model):
        q = DiagonalGaussian.cat(batched(model.posterior, x))
        return q.mode(), q
    return torch.cat(batched(model.encode, x)), None


def sample_prior(
    model: AutoEncoder, n: int, seed: int, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """n images decoded from z ~ N(0, I), drawn on the CPU from `seed` (device-independent)."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    return decode_images(model, torch.randn(n, model.latent_dim, generator=g).to(device))
