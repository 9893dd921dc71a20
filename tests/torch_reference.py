"""The official CycleGAN networks and training step in PyTorch, written from ../shared/REFERENCE.md.

Test-only: the reference that the Keras port is checked against. Module indices follow the official
``nn.Sequential`` layouts so that state-dict keys are the official ones. ``norm`` is the official
``--norm`` (``instance``, ``batch`` or ``none``, which also drops the bias of convs before a norm,
as the official ``use_bias`` rule does); ``dropout``, ``input_nc`` and ``output_nc`` likewise.
"""

from __future__ import annotations

import torch
from torch import nn


def _norm(channels: int, norm: str = "instance") -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if norm == "none":
        return nn.Identity()
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    def __init__(self, dim: int, norm: str = "instance", dropout: bool = False):
        super().__init__()
        bias = norm == "instance"
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), _norm(dim, norm), nn.ReLU(True)]
        layers += [nn.Dropout(0.5)] if dropout else []
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), _norm(dim, norm)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    def __init__(
        self,
        ngf: int = 64,
        n_blocks: int = 9,
        norm: str = "instance",
        dropout: bool = False,
        input_nc: int = 3,
        output_nc: int = 3,
    ):
        super().__init__()
        bias = norm == "instance"
        layers = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, 7, bias=bias),
            _norm(ngf, norm),
            nn.ReLU(True),
        ]
        for i in range(2):
            mult = 2**i
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=bias),
                _norm(ngf * mult * 2, norm),
                nn.ReLU(True),
            ]
        layers += [ResnetBlock(ngf * 4, norm, dropout) for _ in range(n_blocks)]
        for i in range(2):
            mult = 2 ** (2 - i)
            layers += [
                nn.ConvTranspose2d(
                    ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1, bias=bias
                ),
                _norm(ngf * mult // 2, norm),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    def __init__(self, ndf: int = 64, n_layers: int = 3, norm: str = "instance", input_nc: int = 3):
        super().__init__()
        bias = norm == "instance"
        layers = [nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2, padding=1, bias=bias),
                _norm(ndf * mult, norm),
                nn.LeakyReLU(0.2, True),
            ]
        prev, mult = mult, min(2**n_layers, 8)
        layers += [
            nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=bias),
            _norm(ndf * mult, norm),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class PixelDiscriminator(nn.Module):
    def __init__(self, ndf: int = 64, norm: str = "instance", input_nc: int = 3):
        super().__init__()
        bias = norm == "instance"
        self.net = nn.Sequential(
            nn.Conv2d(input_nc, ndf, 1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=bias),
            _norm(ndf * 2, norm),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=bias),
        )

    def forward(self, x):
        return self.net(x)


class UnetBlock(nn.Module):
    def __init__(
        self,
        outer: int,
        inner: int,
        in_channels: int | None = None,
        sub=None,
        outermost=False,
        innermost=False,
        norm: str = "instance",
        dropout: bool = False,
    ):
        super().__init__()
        self.outermost = outermost
        bias = norm == "instance"
        in_channels = outer if in_channels is None else in_channels
        down = nn.Conv2d(in_channels, inner, 4, stride=2, padding=1, bias=bias)
        if outermost:
            up = nn.ConvTranspose2d(inner * 2, outer, 4, stride=2, padding=1)
            layers = [down, sub, nn.ReLU(True), up, nn.Tanh()]
        elif innermost:
            up = nn.ConvTranspose2d(inner, outer, 4, stride=2, padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True), up, _norm(outer, norm)]
        else:
            up = nn.ConvTranspose2d(inner * 2, outer, 4, stride=2, padding=1, bias=bias)
            layers = [
                nn.LeakyReLU(0.2, True),
                down,
                _norm(inner, norm),
                sub,
                nn.ReLU(True),
                up,
                _norm(outer, norm),
            ]
            layers += [nn.Dropout(0.5)] if dropout else []
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    def __init__(
        self,
        num_downs: int = 8,
        ngf: int = 64,
        norm: str = "instance",
        dropout: bool = False,
        input_nc: int = 3,
        output_nc: int = 3,
    ):
        super().__init__()
        block = UnetBlock(ngf * 8, ngf * 8, innermost=True, norm=norm)
        for _ in range(num_downs - 5):
            block = UnetBlock(ngf * 8, ngf * 8, sub=block, norm=norm, dropout=dropout)
        block = UnetBlock(ngf * 4, ngf * 8, sub=block, norm=norm)
        block = UnetBlock(ngf * 2, ngf * 4, sub=block, norm=norm)
        block = UnetBlock(ngf, ngf * 2, sub=block, norm=norm)
        self.model = UnetBlock(output_nc, ngf, in_channels=input_nc, sub=block, outermost=True, norm=norm)

    def forward(self, x):
        return self.model(x)


def numpy_state(module: nn.Module) -> dict:
    """A module's state dict as numpy arrays (what ``load_official_weights`` takes)."""
    return {key: value.detach().numpy().copy() for key, value in module.state_dict().items()}


def nchw(x):
    """A channels-last numpy batch as a channels-first torch tensor."""
    return torch.from_numpy(x.transpose(0, 3, 1, 2).copy())


def nhwc(t):
    """A channels-first torch tensor as a channels-last numpy batch."""
    return t.detach().numpy().transpose(0, 2, 3, 1)


def randomize(module: nn.Module, seed: int) -> nn.Module:
    """Official init (normal(0, 0.02) kernels) but random biases, so the bias mapping is tested too;
    batch norms get random scales, shifts and running statistics."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            std = 0.02 if name.endswith("weight") and parameter.ndim == 4 else 0.05
            center = 1.0 if parameter.ndim == 1 and name.endswith("weight") else 0.0
            parameter.copy_(center + torch.randn(parameter.shape, generator=generator) * std)
        for norm in module.modules():
            if isinstance(norm, nn.BatchNorm2d):
                norm.running_mean.copy_(torch.randn(norm.running_mean.shape, generator=generator) * 0.1)
                norm.running_var.copy_(1 + torch.rand(norm.running_var.shape, generator=generator))
    return module


def official_step(g_a, g_b, d_a, d_b, real_a, real_b, lambda_a=10.0, lambda_b=10.0, lambda_idt=0.5):
    """One official ``optimize_parameters`` with LSGAN, the pool not yet full; returns the losses.

    Official names: netG_A (A->B), netG_B (B->A), netD_A judges B images, netD_B judges A images.
    """
    opt_g = torch.optim.Adam(list(g_a.parameters()) + list(g_b.parameters()), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(list(d_a.parameters()) + list(d_b.parameters()), lr=2e-4, betas=(0.5, 0.999))
    mse, l1 = nn.MSELoss(), nn.L1Loss()

    def gan(scores, real: bool):
        return mse(scores, torch.full_like(scores, 1.0 if real else 0.0))

    fake_b = g_a(real_a)
    rec_a = g_b(fake_b)
    fake_a = g_b(real_b)
    rec_b = g_a(fake_a)
    for net in (d_a, d_b):
        net.requires_grad_(False)
    opt_g.zero_grad()
    losses = {
        "idt_A": l1(g_a(real_b), real_b) * lambda_b * lambda_idt,
        "idt_B": l1(g_b(real_a), real_a) * lambda_a * lambda_idt,
        "G_A": gan(d_a(fake_b), True),
        "G_B": gan(d_b(fake_a), True),
        "cycle_A": l1(rec_a, real_a) * lambda_a,
        "cycle_B": l1(rec_b, real_b) * lambda_b,
    }
    sum(losses.values()).backward()
    opt_g.step()
    for net in (d_a, d_b):
        net.requires_grad_(True)
    opt_d.zero_grad()
    losses["D_A"] = 0.5 * (gan(d_a(real_b), True) + gan(d_a(fake_b.detach()), False))
    losses["D_A"].backward()
    losses["D_B"] = 0.5 * (gan(d_b(real_a), True) + gan(d_b(fake_a.detach()), False))
    losses["D_B"].backward()
    opt_d.step()
    return {key: float(value.detach()) for key, value in losses.items()}
