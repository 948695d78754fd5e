from __future__ import annotations

from functools import partial
from types import SimpleNamespace

import pytest
import timm
from timm.optim import param_groups_layer_decay
import torch
import torch.nn.functional as F
from pytorch_lightning.callbacks import BackboneFinetuning

from conftest import digits_batch, quiet
from ssl_hybrid.data import SemiSupervisedDataModule
from ssl_hybrid.models import CoupledModule, HybridModule, M2Module
from ssl_hybrid.models.backbones import create_backbone, without_pretrained_weights


def test_default_backbone_follows_the_timm_model_api():
    model = timm.create_model("ssl_cnn_small", num_classes=7, in_chans=1)
    x = torch.randn(2, 1, 28, 28)
    features = model.forward_features(x)
    assert features.shape == (2, 128, 7, 7)
    assert model.forward_head(features, pre_logits=True).shape == (2, 128)
    assert model(x).shape == (2, 7)
    model.reset_classifier(0)
    assert model(x).shape == (2, model.num_features)
    assert model.pretrained_cfg["architecture"] == "ssl_cnn_small"


def test_pretrained_weights_load_through_timms_own_path(tmp_path):
    source = timm.create_model("ssl_cnn_small", in_chans=1, num_classes=10)
    torch.save(source.state_dict(), tmp_path / "weights.pth")
    loaded = create_backbone(1, "ssl_cnn_small", pretrained=True, pretrained_cfg_overlay={"file": str(tmp_path / "weights.pth")})
    fresh = create_backbone(1, "ssl_cnn_small")
    key = "stages.1.0.0.weight"
    assert torch.equal(loaded.state_dict()[key], source.state_dict()[key])
    assert not torch.equal(fresh.state_dict()[key], source.state_dict()[key])


def test_a_checkpoints_backbone_keeps_its_normalisation_but_fetches_no_weights():
    overlay = {"file": "/gone/weights.pth", "mean": (0.5,), "std": (0.25,)}
    settings = without_pretrained_weights({"name": "ssl_cnn_small", "pretrained": True, "pretrained_cfg_overlay": overlay})
    assert settings == {"name": "ssl_cnn_small", "pretrained": False, "pretrained_cfg_overlay": {"mean": (0.5,), "std": (0.25,)}}
    assert without_pretrained_weights({"name": "ssl_cnn_small", "pretrained_cfg_overlay": None})["pretrained"] is False


def test_a_model_saved_in_a_folder_loads_by_timms_local_dir_name(tmp_path):
    from timm.models._hub import save_for_hf  # what timm's push_to_hf_hub writes: config.json + model.safetensors

    source = timm.create_model("ssl_cnn_small", in_chans=1, num_classes=10)
    save_for_hf(source, str(tmp_path / "my_model"), safe_serialization=True)
    loaded = create_backbone(1, f"local-dir:{tmp_path / 'my_model'}", pretrained=True)
    key = "stages.1.0.0.weight"
    assert torch.equal(loaded.state_dict()[key], source.state_dict()[key])
    with pytest.raises(ValueError, match="no source prefix but looks like .* or a local path"):
        create_backbone(1, str(tmp_path / "my_model"))


def test_unknown_backbones_and_unavailable_weights_are_explained(tmp_path):
    with pytest.raises(ValueError, match="model.backbone.name='resnet_nope' is not a timm model"):
        create_backbone(1, "resnet_nope")
    with pytest.raises(FileNotFoundError, match=f"pretrained_cfg_overlay.file: no file at {tmp_path / 'none.pth'}"):
        create_backbone(1, "ssl_cnn_small", pretrained=True, pretrained_cfg_overlay={"file": str(tmp_path / "none.pth")})
    weights = {"file": str(tmp_path / "none.pth")}
    with pytest.raises(ValueError, match="pretrained_cfg_overlay.file is read only with model.backbone.pretrained=true"):
        create_backbone(1, "ssl_cnn_small", pretrained_cfg_overlay=weights)  # timm would start from random weights
    (tmp_path / "notes.pth").write_text("not weights")
    with pytest.raises(RuntimeError, match=r"no weights for ssl_cnn_small .*pretrained_cfg_overlay.file=PATH"):
        create_backbone(1, "ssl_cnn_small", pretrained=True, pretrained_cfg_overlay={"file": str(tmp_path / "notes.pth")})


def test_weights_of_another_model_are_refused_not_silently_skipped(tmp_path):
    # e.g. a Lightning checkpoint of an ssl-hybrid run: its keys carry the module's "backbone." prefix, which timm
    # loads with strict=False (the classifier is dropped) as nothing at all
    weights = timm.create_model("ssl_cnn_small", in_chans=1, num_classes=0).state_dict()
    torch.save({"state_dict": {f"backbone.{key}": value for key, value in weights.items()}}, tmp_path / "run.ckpt")
    overlay = {"file": str(tmp_path / "run.ckpt")}
    with pytest.raises(ValueError, match=r"ssl_cnn_small's weights \(.*run.ckpt\) fit none of the backbone's"):
        create_backbone(1, "ssl_cnn_small", pretrained=True, pretrained_cfg_overlay=overlay)


def test_a_backbone_that_cannot_take_the_images_is_refused_naming_the_settings():
    with pytest.raises(ValueError, match=r"vit_tiny_patch16_224 cannot encode images of shape \(1, 8, 8\) .*img_size=N"):
        HybridModule(10, (1, 8, 8), alpha=0.5, backbone={"name": "vit_tiny_patch16_224"})
    module = HybridModule(10, (1, 8, 8), alpha=0.5, backbone={"name": "vit_tiny_patch16_224", "img_size": 8, "patch_size": 2})
    assert module.backbone.training  # the check encodes in eval mode and leaves the backbone as it was built


@pytest.mark.parametrize("name", ["resnet18", "ssl_cnn_base"])
def test_any_timm_backbone_works_on_small_colour_images(name, digits):
    module = quiet(HybridModule(10, (3, 16, 16), alpha=0.5, backbone={"name": name}))
    loss = module.training_step(digits_batch(digits, channels=3, size=16), 0)
    loss.backward()
    assert torch.isfinite(loss) and module.vae.likelihood.__class__.__name__ == "DiscretizedLogistic"
    assert all(p.grad is not None and p.grad.any() for p in [*module.backbone.parameters()][:2])


def test_alpha_one_has_no_generative_branch_and_ignores_unlabeled_images(digits):
    module = quiet(HybridModule(10, (1, 8, 8), alpha=1.0))
    assert module.vae is None and module.training
    encoded = []
    encode = module.encode
    module.encode = lambda images: encoded.append(len(images)) or encode(images)
    batch = digits_batch(digits)
    without = module.training_step({"labeled": batch["labeled"]}, 0)
    # train mode: BatchNorm normalises with the batch's statistics, so unlabeled images in the encoder's batch
    # would change the labeled logits
    assert torch.equal(without, module.training_step(batch, 0))
    assert encoded == [len(batch["labeled"][0])] * 2


def _encoder_grad(module, batch):
    module.zero_grad()
    torch.manual_seed(0)
    module.training_step(batch, 0).backward()
    return torch.cat([p.grad.flatten() for p in module.backbone.parameters()])


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_labels_shape_the_encoder_only_when_alpha_is_above_zero(alpha, digits):
    torch.manual_seed(0)
    module = quiet(HybridModule(10, (1, 8, 8), alpha=alpha)).eval()
    batch = digits_batch(digits)
    grad = _encoder_grad(module, batch)
    assert grad.abs().sum() > 0
    assert module.classifier.weight.grad.abs().sum() > 0  # the head learns at either end
    batch["labeled"] = (batch["labeled"][0], (batch["labeled"][1] + 1) % 10)
    same = torch.allclose(grad, _encoder_grad(module, batch))
    assert same == (alpha == 0.0)  # alpha = 0: the encoder learns from the ELBO alone (M1)


def test_the_latent_is_drawn_with_the_posteriors_standard_deviation(digits, monkeypatch):
    vae = HybridModule(10, (1, 8, 8), alpha=0.5).vae
    features, images = torch.randn(4, 128), digits.train.images[:4]
    monkeypatch.setattr(torch, "randn_like", torch.ones_like)  # z = mu + sigma
    decoded = []
    vae.decoder.register_forward_hook(lambda module, inputs, output: decoded.append(inputs[0]))
    vae(features, images)
    mu, logvar = vae.posterior(features).chunk(2, dim=1)
    torch.testing.assert_close(decoded[0], mu + logvar.mul(0.5).exp())


def _ce_and_nelbo(module, x_l: torch.Tensor, y_l: torch.Tensor, x_u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The labeled images' cross-entropy and the mean negative ELBO per dimension of all images, recomputed
    image by image (eval mode: each image's features do not depend on the rest of the batch)."""
    with torch.no_grad():
        ce = F.cross_entropy(module(x_l), y_l)
        images = torch.cat([x_l, x_u])
        terms = module.vae(module.encode(images), images)
        return ce, (terms.nll + terms.kl).mean() / images[0].numel()


def test_the_training_loss_is_alpha_times_the_discriminative_term_plus_one_minus_alpha_times_the_nelbo(digits, deterministic_z):
    module = quiet(HybridModule(10, (1, 8, 8), alpha=0.5, consistency_weight=2.0, consistency_threshold=0.0)).eval()
    batch = _two_view_batch(digits)
    (x_l, y_l), (x_u, x_strong) = batch["labeled"], batch["unlabeled"]
    ce, nelbo = _ce_and_nelbo(module, x_l, y_l, x_u)
    with torch.no_grad():
        consistency = F.cross_entropy(module(x_strong), module(x_u).argmax(1))
        assert consistency > 0.1  # large enough that leaving it out would show
        for alpha in (0.25, 0.5, 0.75):
            module.hparams.alpha = alpha
            expected = alpha * (ce + 2.0 * consistency) + (1 - alpha) * nelbo
            assert module.training_step(batch, 0).item() == pytest.approx(expected.item(), rel=1e-5)


def test_alpha_outside_the_unit_interval_is_rejected():
    with pytest.raises(ValueError, match="alpha"):
        HybridModule(10, (1, 8, 8), alpha=1.2)


def test_layer_decay_gives_earlier_layers_smaller_learning_rates():
    module = HybridModule(10, (1, 8, 8), optimizer={"lr": 1e-2, "layer_decay": 0.5}, scheduler={"warmup_steps": 0})
    module.trainer = SimpleNamespace(estimated_stepping_batches=100, callbacks=[])
    optimizer = module.configure_optimizers()["optimizer"]
    lrs = sorted({round(group["lr"], 8) for group in optimizer.param_groups})
    assert lrs[-1] == pytest.approx(1e-2) and lrs[0] < lrs[-1] / 4
    assert all("lr_scale" not in group for group in optimizer.param_groups)


def test_the_learning_rate_warms_up_linearly_then_follows_a_cosine_to_zero_at_the_last_step():
    module = HybridModule(10, (1, 8, 8), optimizer={"lr": 1e-2}, scheduler={"warmup_steps": 10})
    module.trainer = SimpleNamespace(estimated_stepping_batches=100, callbacks=[])
    settings = module.configure_optimizers()
    optimizer, scheduler = settings["optimizer"], settings["lr_scheduler"]["scheduler"]
    assert settings["lr_scheduler"]["interval"] == "step"  # Lightning steps it every batch, not every epoch
    lrs = []
    for _ in range(101):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(1e-3) and lrs[4] == pytest.approx(5e-3, rel=0.01)  # (step + 1) / 10 of the peak
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:10]))
    assert all(a > b for a, b in zip(lrs[9:100], lrs[10:100]))
    assert lrs[50] == pytest.approx(0.5e-2) and lrs[100] == 0.0  # half-way down the cosine; zero at the end


def _learning_rates_and_decays(module):
    module.trainer = SimpleNamespace(estimated_stepping_batches=100, callbacks=[])
    optimizer = module.configure_optimizers()["optimizer"]
    return {id(p): (group["lr"], group["weight_decay"]) for group in optimizer.param_groups for p in group["params"]}


def test_timm_no_weight_decay_parameters_do_not_decay():
    module = HybridModule(10, (3, 32, 32), backbone={"name": "vit_tiny_patch16_224", "img_size": 32})
    settings = _learning_rates_and_decays(module)
    named = dict(module.backbone.named_parameters())
    exempt = module.backbone.no_weight_decay()
    assert {"pos_embed", "cls_token"} <= exempt
    assert all(settings[id(named[name])][1] == 0 for name in exempt if name in named)
    assert settings[id(named["blocks.0.attn.qkv.weight"])][1] == pytest.approx(5e-4)


@pytest.mark.parametrize("backbone", [{"name": "resnet18"}, {"name": "vit_tiny_patch16_224", "img_size": 32}])
def test_layer_decay_follows_timms_scales_with_the_head_as_the_top_layer(backbone):
    # timm's own convention (a model with its classifier): the head at the full rate, the last block one step below
    optimizer, scheduler = {"lr": 1e-2, "layer_decay": 0.75}, {"warmup_steps": 0}  # the peak rates from the start
    module = HybridModule(10, (3, 32, 32), alpha=1.0, optimizer=optimizer, scheduler=scheduler, backbone=backbone)
    settings = _learning_rates_and_decays(module)
    options = {key: value for key, value in backbone.items() if key != "name"}
    with_head = timm.create_model(backbone["name"], num_classes=1000, **options)
    names = {id(p): name for name, p in with_head.named_parameters()}
    scales = {names[id(p)]: g["lr_scale"] for g in param_groups_layer_decay(with_head, 0.0, layer_decay=0.75) for p in g["params"]}
    assert all(settings[id(p)][0] == pytest.approx(1e-2 * scales[name]) for name, p in module.backbone.named_parameters())
    assert settings[id(module.classifier.weight)][0] == pytest.approx(1e-2)


def test_layer_decay_reaches_both_networks_of_the_coupled_model():
    module = CoupledModule(10, (1, 8, 8), alpha=0.5, optimizer={"lr": 1e-2, "layer_decay": 0.5})
    settings = _learning_rates_and_decays(module)
    pairs = list(zip(module.backbone.parameters(), module.generative_backbone.parameters()))
    assert all(settings[id(a)] == settings[id(b)] for a, b in pairs)
    assert len({settings[id(a)][0] for a, _ in pairs}) > 1  # the layers do get different rates


def test_backbone_finetuning_is_refused_with_advice():
    module = HybridModule(10, (1, 8, 8))
    module.trainer = SimpleNamespace(estimated_stepping_batches=100, callbacks=[BackboneFinetuning()])
    with pytest.raises(ValueError, match="layer_decay"):
        module.configure_optimizers()


def _two_view_batch(digits):
    batch = digits_batch(digits)
    strong = torch.flip(batch["unlabeled"], dims=[3])
    return {**batch, "unlabeled": [batch["unlabeled"], strong]}


def _set_up(module, stage="fit", **data):
    """``module.setup`` as the Trainer calls it, with a digits datamodule of these settings."""
    module.trainer = SimpleNamespace(datamodule=SemiSupervisedDataModule("digits", **data))
    module.setup(stage)


def test_the_consistency_term_is_refused_before_training_without_unlabeled_images_or_strong_views():
    module = HybridModule(10, (1, 8, 8), alpha=1.0, consistency_weight=1.0)
    with pytest.raises(ValueError, match="strong_transforms"):
        _set_up(module)
    with pytest.raises(ValueError, match="unlabeled_ratio"):
        _set_up(module, unlabeled_ratio=0, strong_transforms=[torch.nn.Identity()])
    _set_up(module, strong_transforms=[torch.nn.Identity()])


def test_a_model_that_reads_no_unlabeled_images_says_so_when_they_are_loaded(recwarn):
    unread = "reads no unlabeled images"
    for model in (HybridModule, M2Module):
        with pytest.warns(UserWarning, match=f"this {model.objective!r} model {unread}"):
            _set_up(model(10, (1, 8, 8), alpha=1.0))
    _set_up(HybridModule(10, (1, 8, 8), alpha=1.0), unlabeled_ratio=0)
    _set_up(HybridModule(10, (1, 8, 8), alpha=0.9))  # the ELBO reads them
    _set_up(M2Module(10, (1, 8, 8), alpha=0.9))
    _set_up(HybridModule(10, (1, 8, 8), alpha=1.0, consistency_weight=1.0), strong_transforms=[torch.nn.Identity()])
    _set_up(HybridModule(10, (1, 8, 8), alpha=1.0, alpha_schedule={"ramp_steps": 10}))  # and does during the ramp
    assert not [w for w in recwarn if unread in str(w.message)]


@pytest.mark.parametrize(
    "model, reads_them",
    [(HybridModule, False), (M2Module, False), (partial(HybridModule, consistency_weight=1.0), True),
     (partial(HybridModule, classify_with="graph"), True)],
    ids=["blend", "m2", "blend_consistency", "blend_graph"],
)  # fmt: skip
def test_propagated_labels_are_refused_before_training_where_nothing_reads_them(model, reads_them):
    propagation = {"dims": 10, "neighbours": 5, "blur": False}
    module = model(10, (1, 8, 8), alpha=1.0)
    strong = [torch.nn.Identity()]  # the consistency term's second view
    if reads_them:
        _set_up(module, label_propagation=propagation, strong_transforms=strong)
    else:
        with pytest.raises(ValueError, match="does not use it"):
            _set_up(module, label_propagation=propagation, strong_transforms=strong)
        _set_up(module, stage="test", label_propagation=propagation)  # testing someone's checkpoint reads nothing


def test_a_propagated_prior_changes_the_pseudo_labels_the_strong_view_is_trained_on(digits):
    torch.manual_seed(0)
    module = quiet(HybridModule(10, (1, 8, 8), alpha=1.0, consistency_weight=1.0, consistency_threshold=0.0)).eval()
    batch = _two_view_batch(digits)
    n_u = len(batch["unlabeled"][0])
    one_hot = lambda label: F.one_hot(torch.full((n_u,), label), 10).float() * 0.99 + 0.001
    losses = [module.training_step({**batch, "unlabeled_prior": one_hot(c)}, 0) for c in (0, 1)]
    with torch.no_grad():  # eval mode: each image's logits do not depend on the rest of the batch
        strong_logits = module(batch["unlabeled"][1])
    ce = [F.cross_entropy(strong_logits, torch.full((n_u,), c)) for c in (0, 1)]
    assert (losses[0] - losses[1]).item() == pytest.approx((ce[0] - ce[1]).item(), abs=1e-4)


def test_alpha_schedule_starts_generative_and_keeps_the_branch_at_alpha_one(digits, deterministic_z):
    module = quiet(HybridModule(10, (1, 8, 8), alpha=1.0, alpha_schedule={"ramp_steps": 100})).eval()
    assert module.vae is not None and module.alpha == 0.0
    batch = digits_batch(digits)
    ce, nelbo = _ce_and_nelbo(module, *batch["labeled"], batch["unlabeled"])
    for step, alpha in [(0, 0.0), (30, 0.3), (70, 0.7), (100, 1.0), (250, 1.0)]:
        module.trainer = SimpleNamespace(global_step=step, log_every_n_steps=1)
        assert module.alpha == pytest.approx(alpha)
        expected = ce + nelbo if alpha == 0.0 else alpha * ce + (1 - alpha) * nelbo  # blend: CE in full at alpha = 0
        with torch.no_grad():
            assert module.training_step(batch, 0).item() == pytest.approx(expected.item(), rel=1e-5), step
    # once the ramp is over (alpha = 1) the branch adds nothing to the loss but still takes part (DDP needs it)
    module.training_step(batch, 0).backward()
    assert all(p.grad is not None and not p.grad.any() for p in module.vae.parameters())


def test_soft_consistency_with_alignment_trains_and_keeps_its_statistics_in_the_checkpoint(digits):
    settings = {"alpha": 1.0, "consistency_weight": 1.0, "consistency_mask": "soft", "distribution_alignment": True}
    module = quiet(HybridModule(10, (1, 8, 8), **settings))
    names = ("mean_probs", "confidence_mean", "confidence_var")
    before = {name: getattr(module.pseudo_labeler, name).clone() for name in names}
    assert torch.isfinite(module.training_step(_two_view_batch(digits), 0))
    trained = {name: getattr(module.pseudo_labeler, name) for name in names}
    assert all(not torch.equal(before[name], trained[name]) for name in names)
    restored = HybridModule(10, (1, 8, 8), **settings)
    restored.load_state_dict(module.state_dict())  # strict: the checkpoint has every key the model needs
    assert all(torch.equal(getattr(restored.pseudo_labeler, name), trained[name]) for name in names)


def test_mean_teacher_labels_the_weak_view_and_follows_the_model_by_its_moving_average(digits):
    torch.manual_seed(0)
    module = quiet(HybridModule(10, (1, 8, 8), alpha=1.0, consistency_weight=1.0, consistency_threshold=0.0, teacher_ema=0.9))
    teacher_start = [p.clone() for p in module.teacher.parameters()]
    assert all(not p.requires_grad for p in module.teacher.parameters())
    seen = []
    module.pseudo_labeler.register_forward_hook(lambda labeler, args, out: seen.append(args[0]))
    batch = _two_view_batch(digits)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.5)
    module.training_step(batch, 0).backward()
    assert torch.equal(seen[0], module.teacher_logits(batch["unlabeled"][0]))
    module.optimizer_step(0, 0, optimizer)  # Lightning's hook: the step, then the teacher follows
    student = [*module.backbone.parameters(), *module.classifier.parameters()]
    for start, teacher, param in zip(teacher_start, module.teacher.parameters(), student):
        assert torch.allclose(teacher, 0.9 * start + 0.1 * param)
    assert all(p.grad is None for p in module.teacher.parameters())
    with pytest.raises(ValueError, match="teacher_ema"):
        HybridModule(10, (1, 8, 8), alpha=1.0, consistency_weight=1.0, teacher_ema=1.0)


def test_kl_warmup_weighs_the_kl_term_by_the_fraction_of_warmup_done(digits, deterministic_z):
    torch.manual_seed(0)
    module = quiet(HybridModule(10, (1, 8, 8), alpha=0.0, kl_warmup_steps=4)).eval()
    batch = digits_batch(digits)
    images = torch.cat([batch["labeled"][0], batch["unlabeled"]])
    with torch.no_grad():
        kl = module.vae(module.encode(images), images).kl.mean() / images[0].numel()
        warming = module.training_step(batch, 0)  # step 0 of 4: KL at weight 1/4
        module.hparams.kl_warmup_steps = 0
        full = module.training_step(batch, 0)
    assert kl > 0 and (full - warming).item() == pytest.approx(0.75 * kl.item(), abs=1e-6)  # float32 loss differences


@pytest.mark.parametrize("every, logged_steps", [(5, [4, 9]), (1, list(range(10))), (0, [])])
def test_training_values_are_logged_every_n_steps_and_never_at_zero(every, logged_steps):
    module = HybridModule(10, (1, 8, 8), alpha=1.0)
    logged = []
    for step in range(10):
        module.trainer = SimpleNamespace(global_step=step, log_every_n_steps=every)
        if module.logs_this_step():
            logged.append(step)
    assert logged == logged_steps
