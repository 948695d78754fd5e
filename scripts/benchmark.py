"""Training throughput of the full stack against a bare PyTorch loop, on the same model and the same batches.

For each data config (default: digits and fashion_mnist; the blend at the default alpha), in one process,
alternating A and B ``--rounds`` times:
  A  ``Trainer.fit`` through the whole stack: datamodule, LightningModule, CSV logging, callbacks;
  B  a hand-written loop: the same model class and config, the same optimizer and schedule
     (``configure_optimizers``), batches from the same DataLoader with the same batch augmentation,
     ``training_step`` with logging switched off, then backward and step, in the same process with the same
     threads, device (``trainer.accelerator``; the clock waits for CUDA work) and precision (fp32).
Both are timed after ``--warmup`` steps. Also: the DataLoader alone and the process's peak RSS so far (a config
measured after a larger one reports the larger one's peak: measure one config per call to compare memory).
Images count the labeled and unlabeled images of each step. ``--profile`` adds a stack run under Lightning's
SimpleProfiler and prints where its time went (data fetch, batch augmentation, training step, backward, optimizer
step, logging).

    python scripts/benchmark.py --steps 200 --json bench.json --config-overrides data.batch_size=64
    python scripts/benchmark.py --rounds 1 --scale data.unlabeled_ratio=0,1,3,7 data.batch_size=16,64

With ``--scale``, each config is also measured at each listed value (one key changed at a time); the JSON keys
are then ``"<config> <key>=<value>"``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from importlib import resources
from types import SimpleNamespace

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_module
from hydra.utils import instantiate
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.profilers import SimpleProfiler
from pytorch_lightning.utilities import move_data_to_device


class StepClock(pl.Callback):
    """Wall time between the end of step ``warmup`` and the end of the last step."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.steps, self.start, self.end = warmup, 0, 0.0, 0.0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.steps += 1
        self.end = clock(pl_module.device)
        if self.steps == self.warmup:
            self.start = self.end


def device_for(accelerator: str) -> torch.device:
    """The device the stack's Trainer picks for this ``trainer.accelerator``."""
    cuda = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    return torch.device("cuda" if cuda else "cpu")


def clock(device: torch.device) -> float:
    """``perf_counter`` once the device's queued work is done."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def build(cfg):
    datamodule = instantiate(cfg.data, _convert_="all")
    model = instantiate(cfg.model, num_classes=datamodule.num_classes, image_shape=list(datamodule.image_shape), _convert_="all")
    return datamodule, model


def stack(cfg, steps: int, warmup: int, log_dir: str, profiler=None) -> float:
    datamodule, model = build(cfg)
    step_clock = StepClock(warmup)
    trainer = pl.Trainer(
        accelerator=cfg.trainer.accelerator, devices=1, max_steps=steps, limit_val_batches=0, num_sanity_val_steps=0,
        logger=CSVLogger(log_dir), log_every_n_steps=cfg.trainer.log_every_n_steps, callbacks=[step_clock],
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        use_distributed_sampler=False, profiler=profiler,
    )  # fmt: skip
    trainer.fit(model, datamodule=datamodule)
    return (step_clock.steps - warmup) * datamodule.images_per_step / (step_clock.end - step_clock.start)


def bare(cfg, steps: int, warmup: int) -> float:
    datamodule, model = build(cfg)
    device = device_for(cfg.trainer.accelerator)
    model.to(device)
    model.logs_this_step = lambda: False  # no logging at all
    model.trainer = SimpleNamespace(estimated_stepping_batches=steps, callbacks=[])  # what configure_optimizers reads
    configured = model.configure_optimizers()
    model.trainer = None
    optimizer, scheduler = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    model.train()
    step, start = 0, 0.0
    while step < steps:
        for batch, *_ in datamodule.train_dataloader():  # CombinedLoader yields (batch, index, loader index)
            loss = model.training_step(datamodule.on_after_batch_transfer(move_data_to_device(batch, device), 0), step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            if step == warmup:
                start = clock(device)
            if step == steps:
                break
    return (steps - warmup) * datamodule.images_per_step / (clock(device) - start)


def loader_only(cfg, steps: int) -> float:
    datamodule, _ = build(cfg)
    count, start = 0, time.perf_counter()
    while count < steps:
        for _ in datamodule.train_dataloader():
            count += 1
            if count == steps:
                break
    return steps * datamodule.images_per_step / (time.perf_counter() - start)


def measure(cfg, args: argparse.Namespace, log_dir: str) -> dict[str, float]:
    runs = {"stack": [], "bare": []}
    for _ in range(args.rounds):
        runs["stack"].append(stack(cfg, args.steps, args.warmup, log_dir))
        runs["bare"].append(bare(cfg, args.steps, args.warmup))
    stack_ips, bare_ips = statistics.median(runs["stack"]), statistics.median(runs["bare"])
    return {
        "stack_images_per_s": stack_ips,
        "bare_images_per_s": bare_ips,
        "ratio": stack_ips / bare_ips,
        "dataloader_images_per_s": loader_only(cfg, args.steps),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def print_profile(profiler: SimpleProfiler, top: int = 12) -> None:
    """The actions that took the most time, as shares of the whole training epoch loop."""
    totals = {action: sum(durations) for action, durations in profiler.recorded_durations.items()}
    loop = totals["run_training_epoch"]
    print(f"  where the time of {loop:.2f} s in the training loop went (Lightning SimpleProfiler):")
    for action, total in sorted(totals.items(), key=lambda item: -item[1])[:top]:
        print(f"  {100 * total / loop:6.1f}%  {total:8.3f} s  {len(profiler.recorded_durations[action]):5d} x  {action}")


def data_configs() -> list[str]:
    """The names of the data config group (``conf/data/*.yaml``)."""
    group = resources.files("ssl_hybrid.conf").joinpath("data")
    return sorted(entry.name.removesuffix(".yaml") for entry in group.iterdir() if entry.name.endswith(".yaml"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--configs", nargs="+", default=["digits", "fashion_mnist"], choices=data_configs(), metavar="DATA",
        help="data configs to measure (conf/data: %(choices)s)",
    )  # fmt: skip
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="A/B alternations")
    parser.add_argument("--config-overrides", nargs="*", default=[], help="Hydra overrides for every config")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--profile", action="store_true", help="then one more stack run under Lightning's SimpleProfiler")
    parser.add_argument(
        "--scale", nargs="*", default=[], metavar="KEY=V1,V2",
        help="also measure each config at each of these values of a config key (e.g. data.unlabeled_ratio=0,1,3,7)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.warmup < 1 or args.rounds < 1:
        parser.error("--warmup and --rounds must be at least 1 (the clock starts at the end of a warm-up step)")
    if args.steps <= args.warmup:
        parser.error(f"--steps ({args.steps}) must exceed --warmup ({args.warmup}): only the steps after it are timed")
    if any(not item.partition("=")[2] for item in args.scale):
        parser.error(f"--scale takes KEY=V1,V2 items, got {args.scale}")
    pl.seed_everything(0, verbose=False)
    variants = [[]] + [[f"{key}={value}"] for key, values in (item.split("=", 1) for item in args.scale) for value in values.split(",")]
    results = {}
    with initialize_config_module("ssl_hybrid.conf", version_base="1.3"), tempfile.TemporaryDirectory() as log_dir:
        for name, variant in ((name, variant) for name in args.configs for variant in variants):
            label = " ".join([name, *variant])
            overrides = [f"data={name}", "logger=none", "callbacks=none", *args.config_overrides, *variant]
            results[label] = measure(compose("train", overrides=overrides), args, log_dir)
            r = results[label]
            print(
                f"{label}: stack {r['stack_images_per_s']:.0f} img/s, bare {r['bare_images_per_s']:.0f} img/s, "
                f"ratio {r['ratio']:.3f}, dataloader {r['dataloader_images_per_s']:.0f} img/s, "
                f"peak RSS so far {r['peak_rss_mb']:.0f} MB (threads {torch.get_num_threads()}, rounds {args.rounds})",
                flush=True,
            )
            if args.profile and not variant:
                profiler = SimpleProfiler(dirpath=log_dir, filename="profile")  # its full report goes to a file
                stack(compose("train", overrides=overrides), args.steps, args.warmup, log_dir, profiler)
                print_profile(profiler)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
