"""Deployment: generators run behind one interface (``runners``, ``generators``), whole photos in
one compiled call (``forward``, ``torch_native``) on the backend ``backend`` picks, photos of any
size in tiles (``tiling``), folders of photos (``translate``), exports in every format (``export``
over the registry in ``formats``, verified by ``verify``), the graph rewrites LiteRT files need
(``subpixel``, ``quantization``, ``calibration``), and the web app's server (``serve``). ``options``
declares ``translate``'s and ``export``'s options.

A new export format: a module in ``formats`` and an entry in ``formats.FORMATS``.
"""
