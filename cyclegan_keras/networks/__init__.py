"""The networks: the official generators (``resnet``, ``unet``) and discriminators, their layers
(``layers``), the options they share (``style``), the generator registry (``architectures``), and
official and pretrained weights (``official``, ``pth``, ``pretrained``).

Every network is layer for layer the official PyTorch code, channels-last. Where Keras' ``"same"``
padding would put the extra pixel on the other side, padding is explicit (``ZeroPadding2D`` or
``ReflectionPadding2D`` then a ``"valid"`` conv), and transposed convs are ``"valid"`` then cropped,
so that official weights give official outputs. Layer names are stable: the official-checkpoint
loader maps them to the PyTorch state-dict keys.

A new generator architecture: a family module here and an entry in ``architectures.GENERATORS``.
"""
