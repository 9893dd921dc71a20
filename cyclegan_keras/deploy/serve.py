"""Serving a web export locally with the headers that let its page use WebAssembly threads.

A page may only use ``SharedArrayBuffer``, which LiteRT.js' threaded build needs, when it is
cross-origin isolated: the server must send ``Cross-Origin-Opener-Policy: same-origin`` and
``Cross-Origin-Embedder-Policy: require-corp``. ``python -m http.server`` sends neither, so the page
falls back to one thread there (4.0x Python LiteRT's time instead of 2.2x, ``docs/benchmarks.md``).
"""

from __future__ import annotations

import functools
import http.server
import os

from cyclegan_keras.errors import UsageError

ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
}


class IsolatedHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files with the cross-origin isolation headers (and no request log)."""

    def end_headers(self):
        for name, value in ISOLATION_HEADERS.items():
            self.send_header(name, value)
        super().end_headers()

    def log_message(self, *args):
        pass


def web_server(folder: str | os.PathLike, host: str = "127.0.0.1", port: int = 8000):
    """A ``ThreadingHTTPServer`` for ``folder`` with ``IsolatedHandler`` (port 0: any free one).

    Raises:
        UsageError: the port cannot be opened.
    """
    handler = functools.partial(IsolatedHandler, directory=os.fspath(folder))
    try:
        return http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as error:
        raise UsageError(f"Cannot serve on {host}:{port} ({error.strerror}): pass another --port.") from None


def serve(folder: str | os.PathLike, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serves the web export ``folder`` at ``http://host:port/`` until Ctrl-C.

    Raises:
        UsageError: ``folder`` is not a web export (``export --format web``), or the port is taken.
    """
    from cyclegan_keras.deploy.formats.web import is_web_export

    if not is_web_export(folder):
        raise UsageError(
            f"{os.fspath(folder)!r} is not a web export: make one with "
            "`cyclegan-keras export --model MODEL --format web --out DIR`."
        )
    server = web_server(folder, host, port)
    print(
        f"Serving {os.fspath(folder)} at http://{host}:{server.server_address[1]}/ (Ctrl-C stops)", flush=True
    )
    try:
        server.serve_forever()
    finally:
        server.server_close()
