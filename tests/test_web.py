"""The web app in a real browser: headless Chromium on pages served from 127.0.0.1, compared with
LiteRT in Python on the same file and photo."""

import base64
import io
import json
import os
import shutil
import threading

import numpy as np
import pytest
from PIL import Image

from cyclegan_keras.cli import main
from cyclegan_keras.deploy.formats.tflite import LiteRTRunner
from cyclegan_keras.errors import UsageError
from tests.conftest import REPO

# `.ci/run` packs the pinned runtime here from the npm registry (`npm pack`); tests serve it locally.
NPM_DIR = REPO / "build" / "npm"
TARBALLS = {
    "@litertjs/core": "litertjs-core-2.5.3.tgz",
    "@litertjs/wasm-utils": "litertjs-wasm-utils-2.5.3.tgz",
}
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SIZE = 64

needs_runtime = pytest.mark.skipif(
    not all((NPM_DIR / name).is_file() for name in TARBALLS.values()),
    reason=f"the LiteRT.js tarballs are not in {NPM_DIR} (`.ci/run` packs them with npm)",
)
needs_browser = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="Debian's chromium and chromium-driver (`.ci/run` installs them)",
)


class _Server:
    """``cyclegan-keras serve``'s server on a free port of 127.0.0.1, in a thread."""

    def __init__(self, folder):
        from cyclegan_keras.deploy.serve import web_server

        self.server = web_server(folder, port=0)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def registry(http_server, tmp_path, monkeypatch):
    """A local npm registry holding the pinned LiteRT.js tarballs; an empty cache."""
    folder, url, stop = http_server
    for package, name in TARBALLS.items():
        target = folder / package / "-" / name.removeprefix("litertjs-")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(NPM_DIR / name, target)
    monkeypatch.setenv("CYCLEGAN_KERAS_NPM_REGISTRY", url)
    monkeypatch.setenv("CYCLEGAN_KERAS_HOME", str(tmp_path / "cache"))
    return stop


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # Chromium's own test camera (a moving pattern), allowed without asking: the camera mode's input.
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=420,900",
                 "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def _open(browser, url, timeout=180):
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    WebDriverWait(browser, timeout).until(
        lambda d: d.execute_script("return document.body.dataset.status").startswith(("done", "error"))
    )
    return browser.execute_script("return Object.assign({}, document.body.dataset)")


def _export(tiny_generator_file, site):
    assert main(["export", "--model", str(tiny_generator_file), "--format", "web", "--input-size", str(SIZE),
                 "--out", str(site)]) == 0  # fmt: skip


@needs_runtime
@needs_browser
@pytest.mark.slow
def test_page_translates_like_litert_in_python(tiny_generator_file, registry, tmp_path, photos, browser):
    site = tmp_path / "site"
    _export(tiny_generator_file, site)
    assert {"index.html", "app.js", "generator.tflite", "model.json"} <= set(os.listdir(site))
    assert (site / "litertjs" / "core" / "index.js").is_file() and list(
        (site / "litertjs" / "wasm").glob("*.wasm")
    )
    registry()  # offline from here on: the page needs nothing but its folder
    photo = (
        Image.open(sorted((photos / "testA").iterdir())[0]).convert("RGB").resize((SIZE, SIZE), Image.BICUBIC)
    )
    photo.save(site / "horse.png")
    expected = LiteRTRunner(str(site / "generator.tflite"))(np.asarray(photo))
    server = _Server(site)
    try:
        state = _open(browser, server.url + "index.html?src=horse.png")
        assert state["status"] == "done", state
        data = browser.find_element("id", "output").get_attribute("src")
        assert data.startswith("data:image/png;base64,")
        got = np.asarray(Image.open(io.BytesIO(base64.b64decode(data.split(",", 1)[1]))).convert("RGB"))
        within_one = np.mean(np.abs(got.astype(int) - expected.astype(int)) <= 1)
        assert within_one >= 0.99, within_one
        assert state["backend"] in ("WASM/XNNPACK", "WebGPU") and float(state["latencyMs"]) > 0
        browser.save_screenshot(str(tmp_path / "web_app.png"))
        assert (tmp_path / "web_app.png").stat().st_size > 0

        # A file that is not an image, and a huge photo: a message on the page, or a result.
        (site / "notes.jpg").write_text("not an image")
        state = _open(browser, server.url + "index.html?src=notes.jpg")
        assert state["status"].startswith("error:") and "not an image" in state["status"]
        assert "not an image" in browser.find_element("id", "message").text
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (2400, 3600, 3), np.uint8)).save(
            site / "big.png"
        )
        assert _open(browser, server.url + "index.html?src=big.png")["status"] == "done"
    finally:
        server.stop()


@needs_runtime
@needs_browser
@pytest.mark.slow
def test_camera_mode_translates_live_frames_like_litert_in_python(
    tiny_generator_file, registry, tmp_path, browser
):
    from selenium.webdriver.support.ui import WebDriverWait

    site = tmp_path / "site"
    _export(tiny_generator_file, site)
    server = _Server(site)
    try:
        browser.get(server.url + "index.html?camera=1&capture=3")
        dataset = "return Object.assign({}, document.body.dataset)"
        WebDriverWait(browser, 120).until(
            lambda d: (
                d.execute_script(dataset).get("fps")
                or d.execute_script(dataset)["status"].startswith("error")
            )
        )
        state = browser.execute_script(dataset)
        assert state["status"] == "camera" and state["captured"] == "true", state
        assert int(state["frames"]) > 3 and float(state["fps"]) > 0, state
        assert "frames/s" in browser.find_element("id", "timing").text

        def png(element):
            data = browser.find_element("id", element).get_attribute("src")
            return np.asarray(Image.open(io.BytesIO(base64.b64decode(data.split(",", 1)[1]))).convert("RGB"))

        frame, got = png("input"), png("output")
        assert frame.shape == (SIZE, SIZE, 3) and frame.std() > 5  # the fake camera's pattern, not black
        expected = LiteRTRunner(str(site / "generator.tflite"))(frame)
        within_one = np.mean(np.abs(got.astype(int) - expected.astype(int)) <= 1)
        assert within_one >= 0.99, within_one
        browser.find_element("id", "camera").click()  # stop: the camera is released
        WebDriverWait(browser, 30).until(lambda d: d.execute_script(dataset)["status"] == "ready")
    finally:
        server.stop()


@needs_runtime
@needs_browser
@pytest.mark.slow
def test_a_browser_without_webassembly_simd_gets_a_message(tiny_generator_file, registry, tmp_path, browser):
    site = tmp_path / "site"
    _export(tiny_generator_file, site)
    server = _Server(site)
    script = browser.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument", {"source": "WebAssembly.validate = () => false;"}
    )
    try:
        state = _open(browser, server.url + "index.html")
        assert state["status"].startswith("error:") and "SIMD" in state["status"]
        assert "SIMD" in browser.find_element("id", "message").text
    finally:
        server.stop()
        # The browser serves the tests after this one: it must have its WebAssembly back.
        browser.execute_cdp_cmd(
            "Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]}
        )


def test_offline_without_the_runtime_says_what_it_needs(tiny_generator_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CYCLEGAN_KERAS_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("CYCLEGAN_KERAS_NPM_REGISTRY", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(SystemExit) as exit_info:
        _export(tiny_generator_file, tmp_path / "site")
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert exit_info.value.code == 2 and "@litertjs/core" in err and "2.5.3" in err
    assert not (tmp_path / "site").exists()


@needs_runtime
def test_a_tampered_runtime_is_refused(registry, http_server, tmp_path):
    from cyclegan_keras.deploy.formats.web import litertjs_runtime

    folder = http_server[0]
    tarball = folder / "@litertjs" / "core" / "-" / "core-2.5.3.tgz"
    tarball.write_bytes(tarball.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(UsageError, match="sha512"):
        litertjs_runtime()
    assert not list((tmp_path / "cache" / "litertjs").glob("*"))


def _tree(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@needs_runtime
@pytest.mark.parametrize("manifest", [True, False], ids=["manifest", "export-before-the-manifest"])
def test_a_re_export_replaces_only_its_own_files(tiny_generator_file, registry, tmp_path, manifest, capsys):
    site = tmp_path / "site"
    _export(tiny_generator_file, site)
    meta = json.loads((site / "model.json").read_text())
    assert sorted(meta["files"]) == sorted(_tree(site))  # the manifest lists every file it wrote
    if not manifest:
        del meta["files"]
        (site / "model.json").write_text(json.dumps(meta))
    (site / "CNAME").write_text("zebras.example.org")
    (site / "about.html").write_text("<p>mine</p>")
    (site / ".git").mkdir()
    (site / ".git" / "HEAD").write_text("ref: refs/heads/gh-pages")
    (site / "generator.tflite").write_bytes(b"stale")
    users = {name: data for name, data in _tree(site).items() if name in ("CNAME", "about.html", ".git/HEAD")}
    _export(tiny_generator_file, site)
    after = _tree(site)
    assert {name: after[name] for name in users} == users
    assert after["generator.tflite"] != b"stale"
    assert set(after) == set(users) | set(json.loads(after["model.json"])["files"])

    # A file of the user's where an export would write: refused, nothing changed.
    meta = json.loads(after["model.json"])
    meta["files"].remove("style.css")
    (site / "model.json").write_text(json.dumps(meta))
    before = _tree(site)
    with pytest.raises(SystemExit) as exit_info:
        _export(tiny_generator_file, site)
    assert exit_info.value.code == 2 and "'style.css'" in capsys.readouterr().err
    assert _tree(site) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left


@needs_runtime
@needs_browser
@pytest.mark.slow
def test_page_runs_an_int8_file_with_two_grid_norms(registry, tmp_path, browser):
    """The NPU-ready int8 export (two-grid norms: int8 batched matmuls and transposes) in LiteRT.js."""
    from cyclegan_keras.deploy.formats.tflite import litert_ops
    from tests.test_export import SIZE as EXPORT_SIZE
    from tests.test_export import _dotted_photos, _unequal_generator

    model = _unequal_generator(4)
    kernel, bias = model.get_layer("conv_in").get_weights()
    model.get_layer("conv_in").set_weights([-np.abs(kernel), bias])  # tails below the mean
    model.save(tmp_path / "g.keras")
    dots = _dotted_photos(tmp_path / "dots", 0)
    site = tmp_path / "site"
    assert main(["export", "--model", str(tmp_path / "g.keras"), "--format", "web", "--quantize", "int8",
                 "--calibration-dir", dots, "--verify-dir", dots, "--input-size", str(EXPORT_SIZE),
                 "--out", str(site)]) == 0  # fmt: skip
    registry()
    shutil.copy(os.path.join(dots, sorted(os.listdir(dots))[0]), site / "dots.png")
    photo = np.asarray(Image.open(site / "dots.png").convert("RGB"))
    expected = LiteRTRunner(str(site / "generator.tflite"))(photo)
    server = _Server(site)
    try:
        state = _open(browser, server.url + "index.html?src=dots.png")
        assert state["status"] == "done", state
        data = browser.find_element("id", "output").get_attribute("src")
        got = np.asarray(Image.open(io.BytesIO(base64.b64decode(data.split(",", 1)[1]))).convert("RGB"))
        assert "BATCH_MATMUL" in litert_ops(site / "generator.tflite")  # the two-grid norm is in it
        assert np.mean(np.abs(got.astype(int) - expected.astype(int)) <= 1) >= 0.99
    finally:
        server.stop()


@needs_runtime
def test_the_site_is_readable_by_a_web_server_of_another_user(tiny_generator_file, registry, tmp_path):
    import stat

    from cyclegan_keras.deploy.formats.web import litertjs_runtime

    mask = os.umask(0o022)
    try:
        runtime = litertjs_runtime()
        os.chmod(runtime, 0o700)  # as an earlier version cached it
        site = tmp_path / "site"
        _export(tiny_generator_file, site)
    finally:
        os.umask(mask)
    for root, folders, files in os.walk(site):
        for name in folders:
            assert stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode) == 0o755, name
        for name in files:
            assert stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode) & 0o044 == 0o044, name
