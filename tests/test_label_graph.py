"""model.classify_with=graph: the label graph fitted at test time on the tested weights, saved with them."""

from __future__ import annotations

import pytest
import torch

from ssl_hybrid.data import SemiSupervisedDataModule
from ssl_hybrid.models.base import load_module
from ssl_hybrid.train import train

PROPAGATION = "data.label_propagation={dims:20,neighbours:10,blur:false}"


def test_a_graph_run_predicts_after_loading_as_it_was_tested(train_cfg, tmp_path, digits):
    cfg = train_cfg(
        "trainer.max_steps=60", "model.consistency_weight=1", "data.strong_transforms=${data.train_transforms}",
        PROPAGATION, "model.classify_with=graph",
    )  # fmt: skip
    summary = train(cfg)
    assert summary["status"] == "completed" and 0.0 < summary["test/acc_head"] <= 1.0
    model = load_module(tmp_path / "run" / "checkpoints" / "best.ckpt")
    graph = model.label_graph
    assert graph.fitted and graph.neighbours == 10 and not graph.blur
    assert graph.node_labels.shape == (len(graph.node_features), 10)
    with torch.no_grad():
        logits = model(digits.test.images)
    assert (logits.argmax(1) == digits.test.labels).float().mean().item() == pytest.approx(summary["test/acc"], abs=1e-6)
    # the head alone is what the graph was consulted on top of
    with torch.no_grad():
        head = model.classifier(model.encode(digits.test.images))
    assert (head.argmax(1) == digits.test.labels).float().mean().item() == pytest.approx(summary["test/acc_head"], abs=1e-6)
    # training on from the tested checkpoint validates with the head again until the next test
    model.on_fit_start()
    assert not graph.fitted and torch.equal(model(digits.test.images), head)


def test_a_graph_without_label_propagation_settings_is_refused():
    dm = SemiSupervisedDataModule("digits", labels_per_class=5)
    with pytest.raises(ValueError, match="data.label_propagation"):
        dm.graph_nodes



def test_a_graph_model_without_label_propagation_is_refused_before_training(train_cfg):
    with pytest.raises(ValueError, match="classify_with=graph needs"):
        train(train_cfg("model.classify_with=graph"))
