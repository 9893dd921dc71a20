"""The one cache of everything this package downloads: ``$CYCLEGAN_KERAS_HOME`` (default
``~/.cache/cyclegan-keras``). A file is in the cache only once it is whole and checked."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable

from cyclegan_keras.errors import UsageError

HOME_VARIABLE = "CYCLEGAN_KERAS_HOME"


def cache_dir(*parts: str) -> str:
    """``$CYCLEGAN_KERAS_HOME/<parts>`` (default ``~/.cache/cyclegan-keras``), created if needed."""
    root = os.path.expanduser(os.environ.get(HOME_VARIABLE) or os.path.join("~", ".cache", "cyclegan-keras"))
    path = os.path.join(root, *parts)
    os.makedirs(path, exist_ok=True)
    return path


def download(
    url: str,
    target: str,
    check: Callable[[str], None] | None = None,
    what: str = "the file",
) -> str:
    """Downloads ``url`` to ``target`` with ``keras.utils.get_file`` (progress bar, partial files removed).

    The file arrives in a staging folder beside ``target``, is ``check``-ed there (a hash, or that it
    reads as what it should be), and only then is renamed into place, so an interrupted or bad
    download never sits at ``target``.

    Args:
        url: where from.
        target: the cache path to fill.
        check: raises ``UsageError`` if the downloaded file is not what was wanted.
        what: how error messages name the file.

    Raises:
        UsageError: the download failed (offline, HTTP error) or the file failed its checks; the
            message names the URL and where to put the file by hand.
    """
    import keras

    parent = os.path.dirname(os.path.abspath(target))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".download-", dir=parent)
    by_hand = f"Download it elsewhere and put it at {target!r}."
    try:
        try:
            path = keras.utils.get_file(
                fname=os.path.basename(target), origin=url, cache_dir=staging, cache_subdir=""
            )
        except Exception as error:  # get_file raises a bare Exception for HTTP and network errors
            raise UsageError(f"Could not download {what} from {url} ({error}). {by_hand}") from error
        if check is not None:
            try:
                check(path)
            except UsageError as error:
                raise UsageError(f"{url} did not give {what}: {error} {by_hand}") from error
        os.replace(path, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
