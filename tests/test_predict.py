"""ssl-hybrid-predict: image files classified as the run tested its model, written to predictions.csv."""

from __future__ import annotations

import csv
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import QUICK, compose_app, compose_train
from ssl_hybrid.data.sources import decode_images
from ssl_hybrid.models.base import load_module
from ssl_hybrid.predict import PREDICTIONS_FILE
from ssl_hybrid.predict import main as predict_main
from ssl_hybrid.train import train

PROPAGATION = "data.label_propagation={dims:20,neighbours:10,blur:false}"


@pytest.fixture(scope="module")
def folder_graph_run(tmp_path_factory, image_folder_root):
    """A run on the image_folder digits that classifies with the label graph."""
    out = tmp_path_factory.mktemp("predict") / "run"
    cfg = compose_train(
        *QUICK, "data=image_folder", f"data.root={image_folder_root}", "data.image_size=8", "data.source_options.channels=1",
        "data.train_transforms=[]", "trainer.max_steps=60", PROPAGATION, "model.classify_with=graph", output_dir=out,
    )  # fmt: skip
    return out, train(cfg)


def read_predictions(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def test_predictions_of_the_test_folder_score_what_the_run_tested(folder_graph_run, image_folder_root, tmp_path):
    run, summary = folder_graph_run
    result = subprocess.run(
        [sys.executable, "-m", "ssl_hybrid.predict", f"ckpt_path={run / 'checkpoints' / 'best.ckpt'}",
         f"images={image_folder_root / 'test'}", "batch_size=64", f"hydra.run.dir={tmp_path}"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "WANDB_MODE": "offline"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    rows = read_predictions(tmp_path / PREDICTIONS_FILE)
    classes = sorted(d.name for d in (image_folder_root / "labeled").iterdir())
    assert list(rows[0]) == ["path", "prediction", "probability", *(f"p({name})" for name in classes)]
    files = sorted((image_folder_root / "test").rglob("*.png"))
    assert [Path(row["path"]) for row in rows] == files  # every file, 200, over 4 batches
    # the same images the run tested, decoded as image_folder decodes them, classified by the stored graph
    right = sum(row["prediction"] == Path(row["path"]).parent.name for row in rows)
    assert right / len(rows) == pytest.approx(summary["test/acc"], abs=1e-6)
    assert summary["test/acc"] != pytest.approx(summary["test/acc_head"], abs=1e-6)  # so the graph made the difference
    for row in rows:
        probabilities = [float(row[f"p({name})"]) for name in classes]
        assert sum(probabilities) == pytest.approx(1, abs=1e-4)
        assert float(row["probability"]) == max(probabilities) == float(row[f"p({row['prediction']})"])


def test_one_file_of_another_size_and_colour_is_decoded_to_the_models_images(folder_graph_run, image_folder_root, tmp_path):
    run, _ = folder_graph_run
    first = sorted((image_folder_root / "test").rglob("*.png"))[0]
    large = tmp_path / "large.jpg"
    Image.open(first).convert("RGB").resize((64, 64), Image.Resampling.NEAREST).save(large, quality=100)
    predict_cli(f"ckpt_path={run / 'checkpoints' / 'best.ckpt'}", f"images={large}", out=tmp_path)
    (row,) = read_predictions(tmp_path / PREDICTIONS_FILE)
    assert row["path"] == str(large) and row["prediction"] in {d.name for d in (image_folder_root / "labeled").iterdir()}


def test_a_checkpoint_without_its_fitted_graph_warns_that_its_head_predicts(folder_graph_run, image_folder_root, tmp_path, caplog):
    run, _ = folder_graph_run
    last = run / "checkpoints" / "last.ckpt"
    assert not load_module(last).label_graph.fitted  # written during training, before the test fitted the graph
    with caplog.at_level(logging.WARNING):
        predict_cli(f"ckpt_path={last}", f"images={image_folder_root / 'test'}", out=tmp_path)
    assert "holds no fitted label graph" in caplog.text and "come from its head" in caplog.text
    assert len(read_predictions(tmp_path / PREDICTIONS_FILE)) == 200


def test_predict_refuses_what_it_cannot_classify(folder_graph_run, tmp_path, monkeypatch):
    run, _ = folder_graph_run
    best = run / "checkpoints" / "best.ckpt"
    (tmp_path / "empty" / ".hidden").mkdir(parents=True)
    (tmp_path / "empty" / ".hidden" / "x.png").write_bytes(b"")
    (tmp_path / "empty" / "notes.txt").write_text("not an image")
    with pytest.raises(FileNotFoundError, match="images: no image files below .*empty"):
        predict_cli(f"ckpt_path={best}", f"images={tmp_path / 'empty'}")
    with pytest.raises(FileNotFoundError, match="images: nothing at .*nowhere"):
        predict_cli(f"ckpt_path={best}", f"images={tmp_path / 'nowhere'}")
    with pytest.raises(ValueError, match=f"{run} is a folder; give a checkpoint, e.g. .*best.ckpt"):
        predict_cli(f"ckpt_path={run}", f"images={tmp_path / 'empty' / 'notes.txt'}")
    with pytest.raises(ValueError, match="batch_size must be"):
        predict_cli(f"ckpt_path={best}", f"images={tmp_path}", "batch_size=0")
    bomb = tmp_path / "bomb.png"  # over Pillow's pixel limit, lowered here: its error named no file
    Image.new("L", (8, 8)).save(bomb)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)
    with pytest.raises(ValueError, match=f"cannot read {bomb} as an image"):
        predict_cli(f"ckpt_path={best}", f"images={bomb}")
    monkeypatch.undo()
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match=f"cannot read {broken} as an image"):
        predict_cli(f"ckpt_path={best}", f"images={broken}")


def test_the_model_refuses_float_images_and_images_of_another_size(folder_graph_run, image_folder_root):
    model = load_module(folder_graph_run[0] / "checkpoints" / "best.ckpt")
    images = decode_images(sorted((image_folder_root / "test").rglob("*.png"))[:4], model.image_shape)
    assert model(images).shape == (4, 10)
    with pytest.raises(TypeError, match=r"images must be uint8 \(0..255\), as the data served them, got torch.float32"):
        model(images.float() / 255)  # torchvision's usual scale, which would be divided by 255 again
    with pytest.raises(ValueError, match=r"images must be \(1, 8, 8\) .* got \(1, 16, 16\)"):
        model(torch.zeros(4, 1, 16, 16, dtype=torch.uint8))


def test_predict_counts_paths_from_the_launch_dir_and_writes_any_file_name(folder_graph_run, image_folder_root, tmp_path, monkeypatch):
    run, _ = folder_graph_run
    launch = tmp_path / "launch"
    (launch / "new").mkdir(parents=True)
    first = sorted((image_folder_root / "test").rglob("*.png"))[0]
    odd = os.fsdecode(b"caf\xe9, \"one\".png")  # not UTF-8: Latin-1 bytes, as older systems write names
    shutil.copy(first, launch / "new" / odd)
    monkeypatch.chdir(launch)
    cfg = compose_app("predict", f"ckpt_path={run / 'checkpoints' / 'best.ckpt'}", "images=new", output_dir=tmp_path / "out")
    (tmp_path / "out").mkdir()
    monkeypatch.chdir(tmp_path / "out")  # as hydra.job.chdir=true does
    predict_main(cfg)
    with (tmp_path / "out" / PREDICTIONS_FILE).open(newline="", encoding="utf-8", errors="surrogateescape") as file:
        (row,) = csv.DictReader(file)
    assert row["path"] == str(launch / "new" / odd)  # the bytes of the name, back as they were read
    assert not list((tmp_path / "out").glob(".*partial"))


def test_predict_help_shows_its_own_settings():
    result = subprocess.run([sys.executable, "-m", "ssl_hybrid.predict", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("ssl-hybrid-predict ckpt_path=<run>/checkpoints/best.ckpt images=PATH")
    assert "images: ???" in result.stdout and "Configuration groups" not in result.stdout


def predict_cli(*overrides: str, out: Path | None = None) -> None:
    """``ssl-hybrid-predict OVERRIDES`` in this process, writing into ``out``: Hydra's entry point runs a config it
    is handed."""
    predict_main(compose_app("predict", *overrides, output_dir=out))
