"""The notebooks run top to bottom on small settings with real photos, and leave what they promise."""

import os

import keras
import pytest
from PIL import Image

import cyclegan_keras  # noqa: F401  (registers the layers that .keras files name)

papermill = pytest.importorskip("papermill")

NOTEBOOKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "notebooks")


@pytest.mark.slow
def test_training_then_export_notebooks(photos, tmp_path):
    run = tmp_path / "run"
    papermill.execute_notebook(
        os.path.join(NOTEBOOKS, "train.ipynb"),
        str(tmp_path / "train.out.ipynb"),
        parameters={
            "DATA_DIR": str(photos),
            "GENERATOR": "resnet_6blocks",
            "NGF": 8,
            "NDF": 8,
            "LOAD_SIZE": 36,
            "CROP_SIZE": 32,
            "EPOCHS": 1,
            "EPOCHS_DECAY": 1,
            "STEPS_PER_EPOCH": 3,
            "OUT": str(run),
        },
        cwd=str(tmp_path),
        kernel_name="python3",
        progress_bar=False,
    )
    assert sorted(os.listdir(run / "samples")) == ["epoch_0001.png", "epoch_0002.png"]
    assert Image.open(run / "samples" / "epoch_0002.png").size == (3 * 32, 6 * 32)
    assert (run / "losses.png").is_file()
    generator = keras.models.load_model(run / "generator_ab.keras", safe_mode=True)
    assert generator.count_params() > 0

    exported = tmp_path / "exported"
    papermill.execute_notebook(
        os.path.join(NOTEBOOKS, "export.ipynb"),
        str(tmp_path / "export.out.ipynb"),
        parameters={
            "MODEL_PATH": str(run / "generator_ab.keras"),
            "INPUT_SIZE": 32,
            "OUT": str(exported),
            "PHOTO_DIR": str(photos / "testA"),
        },
        cwd=str(tmp_path),
        kernel_name="python3",
        progress_bar=False,
    )
    for name in (
        "generator_fp32.tflite",
        "generator_fp16.tflite",
        "generator_int8.tflite",
        "side_by_side.png",
    ):
        assert (exported / name).is_file(), name
    assert (exported / "saved_model" / "saved_model.pb").is_file()


def test_notebooks_are_committed_without_outputs():
    import nbformat

    for name in ("train.ipynb", "export.ipynb"):
        notebook = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
        assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), name
        assert any("parameters" in cell.metadata.get("tags", []) for cell in notebook.cells), name
