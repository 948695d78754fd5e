"""What a run writes survives a write that fails part-way (a full disk): its checkpoints, its summary, and the
predictions of ssl-hybrid-predict."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil

import pytest
import torch
from hydra.utils import instantiate

from conftest import compose_train
from ssl_hybrid.checkpoint_io import SameFolderCheckpointIO
from ssl_hybrid.predict import write_predictions
from ssl_hybrid.run_summary import read_summary, write_json


def _disk_full_while_writing(monkeypatch):
    real_save = torch.save

    def save(obj, file, *args, **kwargs):
        real_save(obj, file, *args, **kwargs)  # most of the bytes land, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", save)


def _disk_full_while_moving(monkeypatch):
    def move(source, destination, *args, **kwargs):  # a move across file systems is a copy over the destination
        with open(source, "rb") as file:
            data = file.read()
        with open(destination, "wb") as file:
            file.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "move", move)


@pytest.mark.parametrize("failure", [_disk_full_while_writing, _disk_full_while_moving], ids=["writing", "moving"])
def test_a_save_that_fails_part_way_leaves_a_whole_checkpoint(failure, tmp_path, monkeypatch):
    io = instantiate(compose_train(output_dir=tmp_path).trainer, logger=False).strategy.checkpoint_io
    path = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"global_step": 10, "weights": torch.arange(1000.0)}, path)
    with monkeypatch.context() as patch, contextlib.suppress(OSError):
        failure(patch)
        io.save_checkpoint({"global_step": 20, "weights": torch.zeros(1000)}, path)
    state = torch.load(path, weights_only=True)  # whole: the previous checkpoint, or the new one, never torn
    assert (state["global_step"], state["weights"].sum().item()) in {(10, sum(range(1000))), (20, 0)}
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]  # no partial file left behind
    io.save_checkpoint({"global_step": 20}, path)
    assert torch.load(path, weights_only=True)["global_step"] == 20


@pytest.mark.parametrize("option", ["default", "cpu", "ddp_cpu"])
def test_every_cpu_trainer_saves_through_it(option, tmp_path):
    trainer = instantiate(compose_train(f"trainer={option}", output_dir=tmp_path).trainer, logger=False)
    assert isinstance(trainer.strategy.checkpoint_io, SameFolderCheckpointIO)


def _disk_full_at_sync(monkeypatch):
    def sync(fd):  # the bytes were handed to the system, which finds no room for them
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", sync)


def test_a_summary_that_cannot_be_written_leaves_the_previous_one_and_no_partial_file(tmp_path, monkeypatch):
    write_json(tmp_path / "metrics.json", {"status": "running"})
    with monkeypatch.context() as patch, pytest.raises(OSError, match="No space left"):
        _disk_full_at_sync(patch)
        write_json(tmp_path / "metrics.json", {"status": "completed", "test/acc": 0.9})
    assert read_summary(tmp_path) == {"status": "running"} and [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_predictions_that_cannot_be_written_leave_the_previous_file_and_no_partial_one(tmp_path, monkeypatch):
    path, files = tmp_path / "predictions.csv", [tmp_path / "a.png", tmp_path / "b.png"]
    write_predictions(path, files, torch.tensor([[0.9, 0.1], [0.2, 0.8]]), ["cat", "dog"])
    before = path.read_text()
    with monkeypatch.context() as patch, pytest.raises(OSError, match="No space left"):
        _disk_full_at_sync(patch)
        write_predictions(path, files, torch.tensor([[0.1, 0.9], [0.8, 0.2]]), ["cat", "dog"])
    assert path.read_text() == before and "a.png,cat,0.900000" in before
    assert [p.name for p in tmp_path.iterdir()] == ["predictions.csv"]
