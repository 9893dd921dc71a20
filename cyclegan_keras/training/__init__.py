"""Training: the ``CycleGAN`` model (``model``) with its losses, image pools, optimizers and
learning-rate schedules, the training step of each Keras backend (``steps``), the run's settings
(``config``: ``TrainConfig``), backend selection (``backends``), sample grids (``samples``) and the
whole run as ``cyclegan-keras train`` does it (``loop``: ``train``).
"""
