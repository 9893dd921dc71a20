"""What a run's sizes need in memory at the least, checked before anything is allocated.

A size far past the machine (``--load-size 100000``, ``--ngf 100000``, ``evaluate --size 100000``) would
otherwise end in the kernel killing the process, or an allocation error from deep inside TensorFlow,
minutes in. The figures here are lower bounds: what must exist at once whatever the runtime does, so
that a size they refuse cannot fit, and sizes that may fit are left to try.
"""

from __future__ import annotations

from cyclegan_keras.errors import UsageError
from cyclegan_keras.networks.architectures import GENERATORS
from cyclegan_keras.system.hardware import available_memory, size_text
from cyclegan_keras.training.config import TrainConfig

# The 70x70 PatchGAN's parameters at 64 filters (the official count).
_DISCRIMINATOR_PARAMETERS = 2_764_737
# Float32 weight, gradient and Adam's two moments for each parameter.
_BYTES_PER_PARAMETER = 4 * 4


def training_memory(config: TrainConfig) -> int:
    """Bytes a run needs at the least: the four networks' parameters with their gradients and Adam's
    moments, one decoded image at the load size in float32 per domain, and the first layer's output of
    one generator pass (``ngf`` channels at the crop size) for the batch."""
    generator = GENERATORS[config.generator].parameters * (config.ngf / 64) ** 2
    discriminator = _DISCRIMINATOR_PARAMETERS * (config.ndf / 64) ** 2
    parameters = 2 * (generator + discriminator) * _BYTES_PER_PARAMETER
    images = 2 * config.load_size**2 * max(config.input_nc, config.output_nc) * 4
    first_layer = config.batch_size * config.crop_size**2 * config.ngf * 4
    return int(parameters + images + first_layer)


def check_training_memory(config: TrainConfig) -> None:
    """Refuses a run whose sizes cannot fit in the memory this machine has available.

    Raises:
        UsageError: naming what it needs, what there is, and the flags that set it.
    """
    check_fits(
        training_memory(config),
        f"--ngf {config.ngf}, --ndf {config.ndf}, --load-size {config.load_size}, --crop-size "
        f"{config.crop_size} and --batch-size {config.batch_size}",
        "lower them",
    )


def check_export_memory(generator, input_size: int) -> None:
    """Refuses an ``--input-size`` at which the generator's first layer alone cannot fit in memory
    (the converter, the calibration and the verification all run the generator at that size)."""
    widest = max((layer.output.shape[-1] or 1 for layer in generator.layers[1:]), default=1)
    check_fits(input_size**2 * widest * 4, f"--input-size {input_size}", "lower --input-size")


def check_fits(needed: int, what: str, remedy: str) -> None:
    """Raises a one-line ``UsageError`` when ``needed`` bytes exceed the memory available now."""
    available = available_memory()
    if needed > available:
        raise UsageError(
            f"{what}: at least {size_text(needed)} of memory needed, and {size_text(available)} is "
            f"available: {remedy}."
        )
