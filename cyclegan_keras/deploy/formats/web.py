"""The generator as a static web app that runs on the visitor's device with LiteRT.js.

``export_web`` writes a folder that any static host serves as it is (``python -m http.server -d
site``, GitHub Pages): ``index.html``, ``app.js``, ``style.css``, ``model.json``, the ``.tflite`` file
and the LiteRT.js runtime (JavaScript and WebAssembly) of the pinned ``@litertjs/core`` release. The
runtime comes from the npm registry once, checked against the registry's sha512 integrity, into
``$CYCLEGAN_KERAS_HOME/litertjs``; exports after that work offline. No Node.js is needed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import tarfile
from collections.abc import Callable
from importlib import resources

from cyclegan_keras.errors import OutputExistsError, UsageError
from cyclegan_keras.run.outputs import check_output_folder, plain_permissions, staging_folder, write_errors
from cyclegan_keras.system.cache import cache_dir, download

LITERTJS_VERSION = "2.5.3"
# npm package -> (folder in the site, sha512 integrity of its registry tarball)
NPM_PACKAGES = {
    "@litertjs/core": (
        "core",
        "sha512-PlGmbMOq9WitX7FO0jhbdJw9GthatsyuCQXjTt/wJZo0FLaw48q4tz8IwqgqCIkviYGr9OFDL1kCnN4nzWoyJQ==",
    ),
    "@litertjs/wasm-utils": (
        "wasm-utils",
        "sha512-4fJiw6tBQnIs+0jH/OQ16nYOiSl8/+zZnn5h2ul8aTKHi05sVqZW580Tmk78pC2kT39A9OYBVdFawteZ/sI1kQ==",
    ),
}
REGISTRY_VARIABLE = "CYCLEGAN_KERAS_NPM_REGISTRY"
REGISTRY = "https://registry.npmjs.org"
# The WebAssembly builds the page can pick from (plain, no-SIMD-extras, threaded); the JSPI build is
# only for WebNN and WebGPU partitioning, which the page does not ask for.
_WASM_BUILDS = ("litert_wasm_internal", "litert_wasm_compat_internal", "litert_wasm_threaded_internal")
_TEMPLATE = ("index.html", "app.js", "style.css")
MODEL_FILE = "generator.tflite"


def tarball_url(package: str, version: str = LITERTJS_VERSION) -> str:
    """The registry URL of an npm package's tarball (``$CYCLEGAN_KERAS_NPM_REGISTRY`` for a mirror)."""
    registry = (os.environ.get(REGISTRY_VARIABLE) or REGISTRY).rstrip("/")
    return f"{registry}/{package}/-/{package.split('/')[-1]}-{version}.tgz"


def _check_integrity(integrity: str):
    algorithm, expected = integrity.split("-", 1)

    def check(path: str) -> None:
        digest = hashlib.new(algorithm)
        with open(path, "rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
        if base64.b64encode(digest.digest()).decode() != expected:
            raise UsageError(f"its {algorithm} does not match the pinned release's")

    return check


def litertjs_runtime() -> str:
    """The folder of the pinned LiteRT.js runtime in the cache, downloading it the first time.

    Returns a folder holding ``core/index.js``, ``wasm/`` (the WebAssembly builds) and
    ``wasm-utils/index.js``.

    Raises:
        UsageError: the download failed or did not match the pinned hashes; the message names the
            URL and where the tarball goes by hand.
    """
    root = cache_dir("litertjs")
    final = os.path.join(root, LITERTJS_VERSION)
    if os.path.isdir(final):
        return final
    staging = staging_folder(root, f".{LITERTJS_VERSION}-")
    try:
        for package, (folder, integrity) in NPM_PACKAGES.items():
            tarball = os.path.join(root, f"{folder}-{LITERTJS_VERSION}.tgz")
            if not os.path.isfile(tarball):
                download(tarball_url(package), tarball, check=_check_integrity(integrity),
                         what=f"the LiteRT.js runtime ({package} {LITERTJS_VERSION})")  # fmt: skip
            with tarfile.open(tarball) as tar:
                for member in tar.getmembers():
                    name = member.name.removeprefix("package/")
                    keep = name.startswith("dist/") and name.endswith(".js") and "bundle" not in name
                    if folder == "core" and name.startswith("wasm/"):
                        keep = os.path.splitext(os.path.basename(name))[0] in _WASM_BUILDS
                        target = os.path.join(staging, "wasm", os.path.basename(name))
                    else:
                        target = os.path.join(staging, folder, os.path.basename(name))
                    if keep and member.isfile():
                        os.makedirs(os.path.dirname(target), exist_ok=True)
                        with tar.extractfile(member) as source, open(target, "wb") as out:
                            shutil.copyfileobj(source, out)
        os.replace(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def is_web_export(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder that ``export_web`` wrote."""
    try:
        with open(os.path.join(os.fspath(path), "model.json")) as file:
            return "litertjs" in json.load(file)
    except (OSError, ValueError):
        return False


def _written_files(out: str) -> set[str]:
    """The files (relative paths) that the previous export into ``out`` wrote, from its manifest."""
    with open(os.path.join(out, "model.json")) as file:
        meta = json.load(file)
    if "files" in meta:
        return set(meta["files"])
    # Exports before the manifest: the template, the model and everything in litertjs/.
    runtime = os.path.join(out, "litertjs")
    found = {os.path.relpath(os.path.join(r, n), out) for r, _, names in os.walk(runtime) for n in names}
    return found | {*_TEMPLATE, "model.json", MODEL_FILE, MODEL_FILE + ".json"}


def _install(staging: str, out: str, files: list[str]) -> None:
    """Moves the export in ``staging`` into ``out``, replacing only the previous export's own files."""
    if not os.path.isdir(out) or not os.listdir(out):
        if os.path.isdir(out):
            os.rmdir(out)
        os.replace(staging, out)
        return
    ours = _written_files(out)
    theirs = [name for name in files if name not in ours and os.path.lexists(os.path.join(out, name))]
    if theirs:
        raise OutputExistsError(
            f"--out {out!r} holds {theirs[0]!r}, which the previous export did not write, so nothing was "
            "changed: move that file, or pass another folder."
        )
    for name in sorted(ours):
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(out, name))
    for name in sorted({os.path.dirname(n) for n in ours if os.path.dirname(n)}, key=len, reverse=True):
        with contextlib.suppress(OSError):  # a folder of ours that now holds nothing
            os.removedirs(os.path.join(out, name))
    for name in files:
        os.makedirs(os.path.dirname(os.path.join(out, name)), exist_ok=True)
        os.replace(os.path.join(staging, name), os.path.join(out, name))


def _copy_site(staging: str, runtime: str) -> None:
    """The page's template and the LiteRT.js runtime, into the staging folder."""
    template = resources.files("cyclegan_keras") / "assets" / "web"
    for name in _TEMPLATE:
        with (template / name).open("rb") as source, open(os.path.join(staging, name), "wb") as target:
            shutil.copyfileobj(source, target)
    shutil.copytree(runtime, os.path.join(staging, "litertjs"))
    plain_permissions(os.path.join(staging, "litertjs"))  # a web server of another user reads it


def export_web(
    generator,
    out: str | os.PathLike,
    *,
    quantize: str | None = None,
    input_size: int = 256,
    title: str | None = None,
    direction: str = "a_to_b",
    calibration=(),
    verify: Callable[[str], None] | None = None,
) -> str:
    """Writes the static web app for ``generator`` into the folder ``out``.

    The app is written in a staging folder and moved into ``out`` when complete (and verified). Its
    ``model.json`` lists the files it wrote; a later export into the same folder replaces those and
    leaves every other file (a ``CNAME``, an extra page, a ``.git`` folder) as it is.

    Args:
        generator: the Keras generator.
        out: a new or empty folder, or one a previous ``export_web`` wrote.
        quantize, input_size, calibration: as ``export_tflite`` (the page takes a fixed square input and
            scales every photo to it).
        title: the page's heading (default: the model's name).
        direction: what the generator translates, for the metadata.
        verify: called with the staged ``.tflite`` path before anything reaches ``out``; an exception
            it raises stops the export with ``out`` unchanged.

    Returns:
        The path of the ``.tflite`` file inside ``out``.

    Raises:
        OutputExistsError: ``out`` holds other files than a web export, or a file of the user's where
            the export would write; UsageError: the runtime cannot be had; WriteError: ``out`` could
            not be written (nothing half-written is left).
    """
    from cyclegan_keras.deploy.formats.tflite import export_tflite

    out = os.fspath(out)
    check_output_folder(out, is_web_export, "web app")
    runtime = litertjs_runtime()  # before any work: offline without it, say so at once
    staging = None
    try:
        with write_errors(out, "the web app"):
            parent = os.path.dirname(os.path.abspath(out))
            os.makedirs(parent, exist_ok=True)
            staging = staging_folder(parent, ".web-")
            _copy_site(staging, runtime)
            export_tflite(generator, os.path.join(staging, MODEL_FILE), quantize=quantize,
                          input_size=input_size, direction=direction, calibration=calibration)  # fmt: skip
            if verify is not None:
                verify(os.path.join(staging, MODEL_FILE))
            files = sorted(
                os.path.relpath(os.path.join(root, name), staging)
                for root, _, names in os.walk(staging)
                for name in names
            )
            meta = {
                "title": title or generator.name,
                "model": MODEL_FILE,
                "size": input_size,
                "quantization": quantize or "float32",
                "direction": direction,
                "litertjs": LITERTJS_VERSION,
                "webgpu": True,
                "files": sorted([*files, "model.json"]),
            }
            with open(os.path.join(staging, "model.json"), "w") as file:
                json.dump(meta, file, indent=2)
            _install(staging, out, meta["files"])
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return os.path.join(out, MODEL_FILE)


def export(generator, out: str, *, settings, calibration, verify) -> None:
    """The registry's writer: ``export_web`` into ``out``, its model verified before it gets there."""
    export_web(generator, out, quantize=settings.quantize, input_size=settings.input_size,
               direction=settings.direction, calibration=calibration, verify=verify)  # fmt: skip


def check_out(out: str, overwrite: bool) -> None:
    """Refuses an ``out`` that holds other files than a web export (a re-export needs no ``overwrite``:
    it replaces only the files its previous export wrote)."""
    check_output_folder(out, is_web_export, "web app")
