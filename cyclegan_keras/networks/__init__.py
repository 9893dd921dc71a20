"""The networks: the official generators (``resnet``, ``unet``) and discriminators, their layers
(``layers``), the options they share (``style``), the generator registry (``architectures``), and
official and pretrained weights (``official``, ``pth``, ``pretrained``).

A new generator architecture: a family module here and an entry in ``architectures.GENERATORS``.
"""
