from __future__ import annotations

import shutil
from collections import Counter

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import TensorDataset
from sklearn.datasets import load_digits as sklearn_digits

from conftest import FASHION_MNIST_DIR, fit_ready, image_key, needs_fashion_mnist, served, write_idx
from ssl_hybrid.data import SemiSupervisedDataModule
from ssl_hybrid.data.datamodule import apply_to_uint8
from ssl_hybrid.data.idx import read_idx
from ssl_hybrid.data.labels import split_labels
from ssl_hybrid.data.sampling import CyclingSampler, ResumableLoader
from ssl_hybrid.data.sources import decode_images, load_fashion_mnist, load_image_folder


def _rows(images: torch.Tensor, labels: torch.Tensor | None = None) -> Counter:
    """The images as a multiset of their bytes (with their labels, if given)."""
    rows = [image_key(img) for img in images]
    return Counter(rows if labels is None else zip(rows, labels.tolist()))


def test_digits_train_and_test_partition_the_real_dataset(digits):
    full = sklearn_digits()
    assert len(digits.train) + len(digits.test) == len(full.target) == 1797
    assert digits.image_shape == (1, 8, 8) and digits.train.images.dtype == torch.uint8
    assert int(digits.train.images.max()) == 255
    expected = _rows(torch.from_numpy(np.rint(full.images * 255 / 16).astype(np.uint8)))
    assert _rows(digits.train.images) + _rows(digits.test.images) == expected


def test_label_split_is_stratified_seed_stable_nested_and_disjoint(digits):
    labels = digits.train.labels
    split = split_labels(labels, labels_per_class=10, val_per_class=5, split_seed=3)
    assert Counter(labels[split.labeled].tolist()) == {c: 10 for c in range(10)}
    assert Counter(labels[split.val].tolist()) == {c: 5 for c in range(10)}
    assert not set(split.val.tolist()) & set(split.labeled.tolist())
    assert not set(split.val.tolist()) & set(split.unlabeled.tolist())
    assert set(split.labeled.tolist()) <= set(split.unlabeled.tolist())  # USB-style: labeled images also unlabeled
    assert len(split.unlabeled) == len(labels) - len(split.val)

    again = split_labels(labels, labels_per_class=10, val_per_class=5, split_seed=3)
    assert torch.equal(again.labeled, split.labeled) and torch.equal(again.val, split.val)
    other = split_labels(labels, labels_per_class=10, val_per_class=5, split_seed=4)
    assert not torch.equal(other.labeled, split.labeled)

    fewer = split_labels(labels, labels_per_class=5, val_per_class=5, split_seed=3)
    assert set(fewer.labeled.tolist()) < set(split.labeled.tolist())
    assert torch.equal(fewer.val, split.val)

    every = split_labels(labels, labels_per_class=None, val_per_class=5, split_seed=3)  # data.labels_per_class=null
    assert torch.equal(every.val, split.val) and torch.equal(every.labeled, every.unlabeled)
    assert sorted(every.labeled.tolist() + every.val.tolist()) == list(range(len(labels)))

    excluded = split_labels(labels, 10, 5, split_seed=3, unlabeled_includes_labeled=False)
    assert not set(excluded.unlabeled.tolist()) & set(excluded.labeled.tolist())


def test_a_smaller_unlabeled_pool_is_stratified_and_nested(digits):
    """data.unlabeled_per_class: Bishop & Lasserre's setting of 5 labeled and 45 unlabeled images per class."""
    labels = digits.train.labels
    whole = split_labels(labels, labels_per_class=5, val_per_class=5, split_seed=3)
    small = split_labels(labels, labels_per_class=5, val_per_class=5, split_seed=3, unlabeled_per_class=45)
    assert torch.equal(small.labeled, whole.labeled) and torch.equal(small.val, whole.val)
    assert Counter(labels[small.unlabeled].tolist()) == {c: 50 for c in range(10)}  # the labeled ones too
    assert set(small.labeled.tolist()) < set(small.unlabeled.tolist()) < set(whole.unlabeled.tolist())
    fewer = split_labels(labels, labels_per_class=5, val_per_class=5, split_seed=3, unlabeled_per_class=20)
    assert set(fewer.unlabeled.tolist()) < set(small.unlabeled.tolist())
    apart = split_labels(labels, 5, 5, split_seed=3, unlabeled_includes_labeled=False, unlabeled_per_class=45)
    assert torch.equal(apart.unlabeled, torch.tensor(sorted(set(small.unlabeled.tolist()) - set(small.labeled.tolist()))))
    none = split_labels(labels, 5, 5, split_seed=3, unlabeled_includes_labeled=False, unlabeled_per_class=0)
    assert len(none.unlabeled) == 0
    dm = SemiSupervisedDataModule("digits", labels_per_class=5, val_per_class=5, split_seed=3, unlabeled_per_class=45)
    assert torch.equal(dm.label_split.unlabeled, small.unlabeled) and dm.num_unlabeled == 500
    assert dm.split_record()["unlabeled_per_class"] == 45


def test_label_split_rejects_too_few_images_per_class(digits):
    with pytest.raises(ValueError, match="too few for data.val_per_class=0, data.labels_per_class=200"):
        split_labels(digits.train.labels, labels_per_class=200, val_per_class=0, split_seed=0)
    with pytest.raises(ValueError, match="data.labels_per_class=10 and data.unlabeled_per_class=200"):
        split_labels(digits.train.labels, labels_per_class=10, val_per_class=5, split_seed=0, unlabeled_per_class=200)
    with pytest.raises(ValueError, match="data.labels_per_class=null labels them all: give data.labels_per_class a number"):
        SemiSupervisedDataModule("digits", labels_per_class=None, unlabeled_per_class=5)
    small_pool = SemiSupervisedDataModule("digits", labels_per_class=10, val_per_class=5, unlabeled_per_class=10)
    with pytest.raises(ValueError, match=r"\(200 images\) is smaller .*\(224\).* a larger data.unlabeled_per_class"):
        fit_ready(small_pool).train_dataloader()


def test_train_batches_mix_labeled_and_unlabeled_in_the_configured_ratio():
    dm = fit_ready(SemiSupervisedDataModule("digits", labels_per_class=4, val_per_class=5, batch_size=16, unlabeled_ratio=3))
    loader = dm.train_dataloader()
    batches = [batch for batch, *_ in loader]
    assert len(batches) == len(loader) == dm.num_unlabeled // 48
    for batch in batches:
        x_l, y_l = batch["labeled"]
        assert x_l.shape == (16, 1, 8, 8) and x_l.dtype == torch.uint8 and y_l.shape == (16,)
        assert batch["unlabeled"].shape == (48, 1, 8, 8)
    # the 40 labeled images are cycled: every one appears within three steps of 16
    labeled_images = dm.splits.train.images[dm.label_split.labeled]
    seen = torch.cat([b["labeled"][0] for b in batches[:3]])
    assert _rows(labeled_images).keys() <= _rows(seen).keys()
    # labels travel with their images
    image_to_label = {image_key(img): int(y) for img, y in zip(labeled_images, dm.splits.train.labels[dm.label_split.labeled])}
    for batch in batches:
        x_l, y_l = batch["labeled"]
        assert all(image_to_label[image_key(img)] == int(y) for img, y in zip(x_l, y_l))


def test_the_batch_order_follows_the_split_seed_not_the_training_seed():
    """Runs that differ only in ``seed`` see the same batches, so a seed sweep varies the initial weights alone."""

    def first_batches(seed: int, split_seed: int) -> list[torch.Tensor]:
        pl.seed_everything(seed, workers=True, verbose=False)  # as train.py seeds a run
        dm = fit_ready(SemiSupervisedDataModule("digits", labels_per_class=4, val_per_class=5, batch_size=8, unlabeled_ratio=2, split_seed=split_seed))
        return [torch.cat([batch["labeled"][0], batch["unlabeled"]]) for (batch, *_), _ in zip(dm.train_dataloader(), range(3))]

    reference = first_batches(seed=0, split_seed=0)
    assert all(torch.equal(a, b) for a, b in zip(first_batches(seed=1, split_seed=0), reference))
    assert not all(torch.equal(a, b) for a, b in zip(first_batches(seed=0, split_seed=1), reference))


def test_epochs_reshuffle_both_streams():
    dm = fit_ready(SemiSupervisedDataModule("digits", labels_per_class=4, val_per_class=5, batch_size=8, unlabeled_ratio=2))
    loader = dm.train_dataloader()
    samplers = [dl.sampler for dl in loader.flattened]

    def first_batch(epoch):
        for sampler in samplers:
            sampler.set_epoch(epoch)
        batch, *_ = next(iter(loader))
        return batch["labeled"][0], batch["unlabeled"]

    (l0, u0), (l0_again, u0_again), (l1, u1) = first_batch(0), first_batch(0), first_batch(1)
    assert torch.equal(l0, l0_again) and torch.equal(u0, u0_again)
    assert not torch.equal(l0, l1) and not torch.equal(u0, u1)


def test_processes_share_the_labeled_set_and_split_the_unlabeled_pool():
    def shard(rank):
        dm = fit_ready(SemiSupervisedDataModule("digits", unlabeled_ratio=1, batch_size=10, val_per_class=5), 2, rank)
        loader = dm.train_dataloader()
        labeled, unlabeled = (list(iter(loader.iterables[stream].sampler)) for stream in ("labeled", "unlabeled"))
        return len(dm.label_split.labeled), labeled, set(unlabeled), sum(1 for _ in loader)

    (n, labeled0, shard0, steps0), (_, labeled1, shard1, steps1) = shard(0), shard(1)
    # each rank cycles through the whole labeled set, in an order of its own
    assert set(labeled0[:n]) == set(labeled1[:n]) == set(range(n)) and labeled0[:n] != labeled1[:n]
    assert not shard0 & shard1 and steps0 == steps1 == len(shard0) // 10


def test_validation_serves_the_held_out_images_and_test_the_test_split(digits):
    dm = fit_ready(SemiSupervisedDataModule("digits", labels_per_class=4, val_per_class=5, eval_batch_size=7))

    train, val = dm.splits.train, dm.label_split.val
    assert _rows(*served(dm.val_dataloader())) == _rows(train.images[val], train.labels[val])
    assert not set(val.tolist()) & set(dm.label_split.labeled.tolist())
    assert _rows(*served(dm.test_dataloader())) == _rows(dm.splits.test.images, dm.splits.test.labels)


def test_labeled_only_epochs_when_unlabeled_ratio_is_zero():
    dm = fit_ready(SemiSupervisedDataModule("digits", labels_per_class=5, val_per_class=5, batch_size=8, unlabeled_ratio=0))
    batches = [batch for batch, *_ in dm.train_dataloader()]
    assert len(batches) == 7 and all(set(b) == {"labeled"} for b in batches)  # ceil(50 / 8)


def test_cycling_sampler_covers_every_index_each_round():
    sampler = CyclingSampler(size=7, num_samples=21, seed=1)
    stream = list(sampler)
    assert len(stream) == 21 and all(sorted(stream[i : i + 7]) == list(range(7)) for i in (0, 7, 14))


def test_bad_settings_fail_with_clear_errors():
    with pytest.raises(ValueError, match="unknown data.dataset"):
        SemiSupervisedDataModule("imagenet22k")
    with pytest.raises(ValueError, match="label_propagation needs exactly the keys"):
        SemiSupervisedDataModule("digits", label_propagation={"dims": 50})
    dm = fit_ready(SemiSupervisedDataModule("digits", batch_size=512, unlabeled_ratio=4))
    with pytest.raises(ValueError, match="smaller than one unlabeled batch .*: lower data.batch_size"):
        dm.train_dataloader()
    # one batch of 700 fits the pool of 1147 images, one for each of two DDP processes does not
    fit_ready(SemiSupervisedDataModule("digits", batch_size=100, unlabeled_ratio=7)).train_dataloader()
    dm = fit_ready(SemiSupervisedDataModule("digits", batch_size=100, unlabeled_ratio=7), world_size=2)
    with pytest.raises(ValueError, match=r"\(1147 images\) is smaller than one unlabeled batch \(700\) for each of 2 process"):
        dm.train_dataloader()
    # every image labeled, and the labeled ones not in the pool: nothing left, which a smaller batch cannot mend
    dm = fit_ready(SemiSupervisedDataModule("digits", labels_per_class=None, unlabeled_includes_labeled=False))
    with pytest.raises(ValueError, match=r"pool \(0 images\) .*: the labeled and validation images use up"):
        dm.train_dataloader()


def test_idx_reader_reads_the_original_format(tmp_path, digits):
    images = digits.train.images[:50, 0].numpy()
    write_idx(tmp_path / "x-idx3-ubyte.gz", images)
    write_idx(tmp_path / "y-idx1-ubyte", digits.train.labels[:50].numpy().astype(np.uint8))
    assert torch.equal(read_idx(tmp_path / "x-idx3-ubyte.gz"), torch.from_numpy(images))
    assert read_idx(tmp_path / "y-idx1-ubyte").tolist() == digits.train.labels[:50].tolist()
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "bad")


def test_fashion_mnist_reader_on_written_idx_files(fashion_idx_dir):
    splits = load_fashion_mnist(str(fashion_idx_dir))
    assert splits.image_shape == (1, 28, 28) and len(splits.classes) == 10
    for part, prefix in ((splits.train, "train"), (splits.test, "t10k")):
        (images,) = fashion_idx_dir.glob(f"{prefix}-images-idx3-ubyte*")
        (labels,) = fashion_idx_dir.glob(f"{prefix}-labels-idx1-ubyte*")
        assert torch.equal(part.images[:, 0], read_idx(images)) and part.labels.tolist() == read_idx(labels).tolist()


def test_fashion_mnist_reader_explains_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="data.root"):
        load_fashion_mnist(str(tmp_path))


@needs_fashion_mnist
def test_real_fashion_mnist_is_complete_and_balanced():
    splits = load_fashion_mnist(str(FASHION_MNIST_DIR))
    assert splits.train.images.shape == (60000, 1, 28, 28) and splits.test.images.shape == (10000, 1, 28, 28)
    assert Counter(splits.train.labels.tolist()) == {c: 6000 for c in range(10)}
    assert Counter(splits.test.labels.tolist()) == {c: 1000 for c in range(10)}


def test_image_folder_reads_the_layout(image_folder_root, digits):
    splits = load_image_folder(str(image_folder_root), channels=1, image_size=8)
    assert splits.classes == tuple(f"digit_{c}" for c in range(10))
    assert len(splits.train) == 300 and len(splits.val) == 100 and len(splits.test) == 200
    assert len(splits.extra_unlabeled) == len(digits.train) - 400  # found through nested folders
    # PNG round trip is lossless, and each image's class is its folder's
    assert _rows(splits.train.images, splits.train.labels) == _rows(digits.train.images[:300], digits.train.labels[:300])
    rgb = load_image_folder(str(image_folder_root), channels=3, image_size=16)
    assert rgb.image_shape == (3, 16, 16)


@pytest.mark.parametrize("includes_labeled", [True, False])
def test_image_folder_with_a_label_count_keeps_that_many_per_class_and_hides_the_rest(includes_labeled, image_folder_root):
    options = {"channels": 1, "image_size": 8}
    dm = SemiSupervisedDataModule(
        "image_folder", root=str(image_folder_root), labels_per_class=3, source_options=options,
        unlabeled_includes_labeled=includes_labeled,
    )  # fmt: skip
    record = dm.split_record()
    assert Counter(record["labeled_labels"]) == {c: 3 for c in range(10)}
    assert dm.num_val_images == 100 and record["val"] == []  # val/ is the validation set: none drawn from labeled/
    # the hidden labeled/ images join the pool of unlabeled/'s 947, without their labels
    assert dm.num_unlabeled == (300 if includes_labeled else 270) + 947
    with pytest.raises(ValueError, match="data.unlabeled_per_class counts images per class, and image_folder's 947"):
        _ = SemiSupervisedDataModule("image_folder", root=str(image_folder_root), source_options=options, unlabeled_per_class=5).label_split


def test_image_folder_explains_a_wrong_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="labeled"):
        load_image_folder(str(tmp_path))
    with pytest.raises(ValueError, match="data.root"):
        load_image_folder(None)


@pytest.mark.parametrize(
    ("damage", "error", "message"),
    [
        ("test/digit_10", ValueError, r"classes \['digit_10'\] of .*test have no folder in labeled/"),
        ("val/cat", ValueError, r"classes \['cat'\] of .*val have no folder in labeled/"),
        ("val/", FileNotFoundError, "no images in .*val"),  # val/ without images: no model selection
    ],
)
def test_image_folder_refuses_test_or_val_folders_that_do_not_match_labeled(damage, error, message, image_folder_root, tmp_path):
    root = tmp_path / "images"
    shutil.copytree(image_folder_root, root, ignore=shutil.ignore_patterns("unlabeled"))
    if damage == "val/":
        shutil.rmtree(root / "val")
    (root / damage).mkdir(parents=True)
    with pytest.raises(error, match=message):
        load_image_folder(str(root), channels=1, image_size=8)


def test_image_folder_skips_hidden_folders_and_refuses_an_empty_class(image_folder_root, tmp_path):
    root = tmp_path / "images"
    shutil.copytree(image_folder_root, root, ignore=shutil.ignore_patterns("unlabeled"))
    for hidden in ("labeled/.ipynb_checkpoints", "test/.ipynb_checkpoints", "labeled/digit_3/.ipynb_checkpoints"):
        (root / hidden).mkdir()
        shutil.copy(next((root / "labeled" / "digit_3").glob("*.png")), root / hidden / "copy-checkpoint.png")
    splits = load_image_folder(str(root), channels=1, image_size=8)
    assert splits.classes == tuple(f"digit_{c}" for c in range(10)) and len(splits.train) == 300
    (root / "labeled" / "digit_10").mkdir()  # a class folder without images would be a class nothing teaches
    with pytest.raises(ValueError, match=r"class folders \['digit_10'\] of .*labeled hold no images"):
        load_image_folder(str(root), channels=1, image_size=8)
    for folder in ("labeled", "test"):  # one class: torchmetrics' error would name no setting
        for extra in [d for d in (root / folder).iterdir() if d.name not in ("digit_3", ".ipynb_checkpoints")]:
            shutil.rmtree(extra)
    with pytest.raises(ValueError, match=r"one class folder \(digit_3\) in .*labeled: a classifier needs two or more"):
        load_image_folder(str(root), channels=1, image_size=8)


def test_image_folder_scales_16_bit_images_and_names_a_file_it_cannot_read(image_folder_root, tmp_path):
    from PIL import Image

    root = tmp_path / "images"
    shutil.copytree(image_folder_root, root, ignore=shutil.ignore_patterns("unlabeled"))
    first = sorted((root / "labeled" / "digit_0").glob("*.png"))[0]  # the first image of the first class
    eight_bit = np.asarray(Image.open(first))
    Image.fromarray(eight_bit.astype(np.uint16) * 257).save(first)  # the same image at 16 bits: 255 -> 65535
    assert Image.open(first).mode.startswith("I;16")
    splits = load_image_folder(str(root), channels=1, image_size=8)
    assert np.array_equal(splits.train.images[0, 0].numpy(), eight_bit)
    first.write_bytes(first.read_bytes()[:60])  # truncated: PIL's error names no file
    with pytest.raises(ValueError, match=f"cannot read {first} as an image"):
        load_image_folder(str(root), channels=1, image_size=8)


def test_image_folder_follows_symlinked_folders_once_each(image_folder_root, tmp_path):
    root, pool = tmp_path / "images", tmp_path / "pool"
    shutil.copytree(image_folder_root, root, ignore=shutil.ignore_patterns("unlabeled"))
    shutil.copytree(image_folder_root / "unlabeled" / "batch_0", pool)
    (root / "unlabeled").mkdir()
    (root / "unlabeled" / "linked").symlink_to(pool, target_is_directory=True)
    (root / "unlabeled" / "linked_again").symlink_to(pool, target_is_directory=True)
    (pool / "deeper" / "cycle").symlink_to(pool, target_is_directory=True)
    splits = load_image_folder(str(root), channels=1, image_size=8)
    assert len(splits.extra_unlabeled) == len(list(pool.rglob("*.png"))) > 0


@pytest.mark.parametrize("stored, decoded", [(24, 8), (8, 16)])
def test_images_of_another_size_are_resized_bilinearly(digits, tmp_path, stored, decoded):
    """As torch resizes them (antialiased bilinear, which follows Pillow), to within rounding."""
    from PIL import Image

    files = []
    for i, image in enumerate(digits.test.images[:20]):
        files.append(tmp_path / f"{i}.png")
        Image.fromarray(image[0].numpy(), mode="L").resize((stored, stored), Image.Resampling.BICUBIC).save(files[-1])
    originals = torch.stack([torch.from_numpy(np.array(Image.open(file))) for file in files])[:, None].float()
    expected = torch.nn.functional.interpolate(originals, size=(decoded, decoded), mode="bilinear", antialias=True)
    difference = decode_images(files, (1, decoded, decoded)).float() - expected.round().clamp(0, 255)
    assert difference.abs().max() <= 1


def test_images_are_decoded_upright_by_their_exif_orientation(digits, tmp_path):
    from PIL import Image

    upright = digits.train.images[0, 0].numpy()
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera stored the picture turned a quarter anticlockwise
    Image.fromarray(np.rot90(upright).copy(), mode="L").save(tmp_path / "photo.png", exif=exif)
    decoded = decode_images([tmp_path / "photo.png"], (1, 8, 8))
    assert np.array_equal(decoded[0, 0].numpy(), upright) and not np.array_equal(np.rot90(upright), upright)


def test_image_folder_needs_one_image_size(image_folder_root):
    with pytest.raises(ValueError, match="data.image_size must be an integer >= 1, got None"):
        load_image_folder(str(image_folder_root), channels=1, image_size=None)


def test_augmentations_that_change_the_image_size_are_refused_naming_their_key():
    from kornia.augmentation import RandomCrop

    dm = fit_ready(SemiSupervisedDataModule("digits", unlabeled_ratio=1, strong_transforms=[RandomCrop((6, 6))]))
    batch, *_ = next(iter(dm.train_dataloader()))
    with pytest.raises(ValueError, match=r"data.strong_transforms turn images of shape \(1, 8, 8\) into \(1, 6, 6\)"):
        dm.on_after_batch_transfer(batch, 0)


def test_train_transforms_act_on_the_labeled_images_too_and_leave_their_labels():
    from kornia.augmentation import RandomHorizontalFlip

    dm = fit_ready(SemiSupervisedDataModule("digits", unlabeled_ratio=1, batch_size=8, train_transforms=[RandomHorizontalFlip(p=1.0)]))
    batch, *_ = next(iter(dm.train_dataloader()))
    (x_l, y_l), x_u = batch["labeled"], batch["unlabeled"]
    augmented = dm.on_after_batch_transfer({"labeled": (x_l.clone(), y_l.clone()), "unlabeled": x_u.clone()}, 0)
    assert torch.equal(augmented["labeled"][0], x_l.flip(-1)) and torch.equal(augmented["labeled"][1], y_l)
    assert torch.equal(augmented["unlabeled"], x_u.flip(-1))


def test_a_fractional_unlabeled_ratio_rounds_the_unlabeled_batch_to_the_nearest_image():
    dm = fit_ready(SemiSupervisedDataModule("digits", unlabeled_ratio=1.9, batch_size=3))  # 5.7 images
    batch, *_ = next(iter(dm.train_dataloader()))
    assert dm.unlabeled_batch_size == 6 and len(batch["unlabeled"]) == 6


def test_back_to_8_bits_each_pixel_takes_the_nearest_level():
    images = torch.arange(0, 256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    assert torch.equal(apply_to_uint8(lambda x: x + 0.4 / 255, images), images)
    assert torch.equal(apply_to_uint8(lambda x: x + 0.6 / 255, images), (images.int() + 1).clamp(max=255).to(torch.uint8))


def test_strong_transforms_give_two_views_of_each_unlabeled_image(digits):
    from kornia.augmentation import RandomErasing

    # erased pixels become 0.2 * 255 = 51, a grey level no digit has, so the erased patch can be read off
    fill = 51
    assert fill not in digits.train.images.unique().tolist()
    dm = fit_ready(SemiSupervisedDataModule(
        "digits", labels_per_class=4, val_per_class=5, batch_size=8, unlabeled_ratio=2,
        strong_transforms=[RandomErasing(p=1.0, scale=(0.2, 0.3), value=fill / 255)],
    ))  # fmt: skip
    batch, *_ = next(iter(dm.train_dataloader()))
    source = batch["unlabeled"].clone()
    batch = dm.on_after_batch_transfer(batch, 0)
    weak, strong = batch["unlabeled"]
    assert weak.shape == strong.shape == (16, 1, 8, 8) and strong.dtype == torch.uint8
    assert torch.equal(weak, source)  # no train_transforms: the weak view is the gathered image
    for image, erased in zip(source, strong):
        changed = (erased != image)[0]
        rows, cols = changed.any(1).nonzero()[:, 0], changed.any(0).nonzero()[:, 0]
        assert len(rows) and len(cols), "the strong view is the image itself"
        patch = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        # the same image with one solid rectangle of the fill value
        assert changed[patch].all() and changed.sum() == changed[patch].numel() and (erased[0][patch] == fill).all()
    assert batch["labeled"][0].shape == (8, 1, 8, 8)  # labeled images keep a single view


def test_a_loader_resumed_after_k_batches_hands_out_the_rest_of_its_pass_and_keeps_counting():
    def loader():
        return ResumableLoader(TensorDataset(torch.arange(20)), batch_size=4, sampler=CyclingSampler(20, 20))

    whole = [batch.tolist() for batch, in loader()]
    assert len(whole) == 5
    for k in range(len(whole) + 1):
        resumed = loader()
        resumed.load_state_dict({"batches_handed_out": k})
        drawn = []
        for batch, in resumed:
            drawn.append(batch.tolist())
            # what a checkpoint taken now records, for a second interruption
            assert resumed.state_dict() == {"batches_handed_out": k % len(whole) + len(drawn)}
        assert drawn == (whole[k:] if k < len(whole) else whole)  # an ended pass resumes at the next one's start
        assert [batch.tolist() for batch, in resumed] == whole  # and the pass after is whole again
