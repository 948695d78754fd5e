"""model.classify_with=graph: the label graph fitted at test time on the tested weights, saved with them."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from conftest import accuracy, served
from ssl_hybrid.data import SemiSupervisedDataModule
from ssl_hybrid.label_propagation import WhitenedPCA
from ssl_hybrid.models.label_graph import LabelGraph, two_view_features
from ssl_hybrid.models import HybridModule
from ssl_hybrid.models.base import load_module
from ssl_hybrid.train import train

PROPAGATION = "data.label_propagation={dims:20,neighbours:10,blur:false}"


def test_each_view_has_unit_length_so_a_cosine_is_the_mean_of_the_two_views_cosines(digits):
    images = digits.train.images[:6]
    pca = WhitenedPCA.fit(digits.train.images, 10)
    encoded = torch.randn(6, 32) * 5
    features = two_view_features(pca, images, encoded)
    for view in features.split([32, 10], dim=1):
        torch.testing.assert_close(view.norm(dim=1), torch.ones(6))
    unit = F.normalize(features, dim=1)
    each = [F.cosine_similarity(view[:, None], view[None], dim=2) for view in (encoded, pca(images))]
    torch.testing.assert_close(unit @ unit.T, (each[0] + each[1]) / 2)


@pytest.mark.parametrize("blur", [False, True])
def test_new_images_are_projected_as_the_nodes_were_also_after_loading(digits, blur):
    images, labels = digits.train.images[:200], digits.train.labels[:20]
    encoded = torch.randn(200, 16)
    graph = LabelGraph()
    graph.fit(WhitenedPCA.fit(images, 10, blur=blur), 5, images, encoded, torch.arange(20), labels, 10)
    loaded = LabelGraph()
    loaded.load_state_dict(graph.state_dict())
    for fitted in (graph, loaded):  # a node's own image lands on the node (stored in half precision)
        torch.testing.assert_close(fitted.features(images, encoded), graph.node_features.float(), atol=2e-3, rtol=0)


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
    assert accuracy(logits, digits.test.labels) == pytest.approx(summary["test/acc"], abs=1e-6)
    # the head alone is what the graph was consulted on top of
    with torch.no_grad():
        head = model.classifier(model.encode(digits.test.images))
    assert accuracy(head, digits.test.labels) == pytest.approx(summary["test/acc_head"], abs=1e-6)
    # the validation images classified by the graph too, which the head's val/acc is not
    val_images, val_labels = served(instantiate(cfg.data, _convert_="all").val_dataloader())
    with torch.no_grad():
        val_logits = model(val_images)
    assert accuracy(val_logits, val_labels) == pytest.approx(summary["val/acc_as_tested"], abs=1e-6)
    # training on from the tested checkpoint validates with the head again until the next test
    model.on_fit_start()
    assert not graph.fitted and torch.equal(model(digits.test.images), head)


@pytest.mark.filterwarnings("ignore:Be aware that when using `ckpt_path`")  # a bare trainer, on purpose
def test_testing_a_checkpoint_adds_the_graph_and_leaves_its_training_state(train_cfg, tmp_path):
    cfg = train_cfg("trainer.max_steps=20", PROPAGATION, "model.classify_with=graph", "test=false")
    summary = train(cfg)
    assert summary["status"] == "completed" and summary["test/acc"] is None  # test=false: trained, not tested
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    before = torch.load(ckpt, weights_only=True)
    assert before["state_dict"]["label_graph.node_labels"].numel() == 0
    # a fresh trainer, as in `trainer.test(model, ckpt_path=...)` on someone's checkpoint
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.test(load_module(ckpt), datamodule=instantiate(cfg.data, _convert_="all"), ckpt_path=ckpt, verbose=False)
    after = torch.load(ckpt, weights_only=True)
    assert after["state_dict"]["label_graph.node_labels"].shape[1] == 10
    assert (after["global_step"], after["epoch"], after["loops"]) == (before["global_step"], before["epoch"], before["loops"])
    assert len(after["optimizer_states"]) == len(before["optimizer_states"]) == 1
    weights = {k: v for k, v in before["state_dict"].items() if not k.startswith("label_graph.")}
    assert all(torch.equal(after["state_dict"][k], v) for k, v in weights.items())


def test_a_graph_without_label_propagation_settings_is_refused():
    dm = SemiSupervisedDataModule("digits", labels_per_class=5)
    with pytest.raises(ValueError, match="data.label_propagation"):
        dm.graph_nodes



def test_a_graph_model_without_label_propagation_is_refused_before_training(train_cfg):
    with pytest.raises(ValueError, match="classify_with=graph needs"):
        train(train_cfg("model.classify_with=graph"))


def test_a_class_the_graph_never_reaches_costs_a_large_but_finite_cross_entropy(digits):
    torch.manual_seed(0)
    module = HybridModule(10, (1, 8, 8), alpha=1.0, classify_with="graph").eval()
    images, labels = digits.train.images[:300], digits.train.labels[:300]
    labeled = torch.nonzero(labels < 2).flatten()[:10]  # only classes 0 and 1 have labels to spread
    with torch.no_grad():
        module.label_graph.fit(WhitenedPCA.fit(images, 20), 10, images, module.encode(images), labeled, labels[labeled], 10)
        logits = module(digits.test.images[:50])
    assert (module.label_graph.node_labels[:, 2:] == 0).all()  # below half precision's smallest number
    assert torch.isfinite(logits).all() and torch.isfinite(F.cross_entropy(logits, digits.test.labels[:50]))


def test_under_mixed_precision_the_graph_and_validation_are_scored_at_the_tests_precision(
    train_cfg, tmp_path, digits, monkeypatch
):
    """bf16 autocast (the GPU configs' precision; CPU autocast here): the pool's nodes, the test images and the
    validation images behind val/acc_as_tested are all encoded at the test's precision."""
    autocast_in_forward = []  # forward classifies as tested; during a run only val/acc_as_tested calls it
    forward = HybridModule.forward

    def recording_forward(module, images):
        autocast_in_forward.append(torch.is_autocast_enabled("cpu"))
        return forward(module, images)

    monkeypatch.setattr(HybridModule, "forward", recording_forward)
    cfg = train_cfg("trainer.max_steps=40", "+trainer.precision=bf16-mixed", PROPAGATION, "model.classify_with=graph")
    summary = train(cfg)
    monkeypatch.undo()
    assert autocast_in_forward and all(autocast_in_forward)
    model = load_module(tmp_path / "run" / "checkpoints" / "best.ckpt")
    datamodule = instantiate(cfg.data, _convert_="all")
    refit = load_module(tmp_path / "run" / "checkpoints" / "best.ckpt")
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        refit.fit_label_graph(datamodule.graph_nodes)
    encoder_view = slice(0, model.backbone.num_features)  # the PCA view is refitted, so compare the encoder's
    assert torch.equal(model.label_graph.node_features[:, encoder_view], refit.label_graph.node_features[:, encoder_view])
    val_images, val_labels = served(datamodule.val_dataloader())
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert accuracy(model(digits.test.images), digits.test.labels) == pytest.approx(summary["test/acc"], abs=1e-6)
        assert accuracy(model(val_images), val_labels) == pytest.approx(summary["val/acc_as_tested"], abs=1e-6)
