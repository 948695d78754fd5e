from __future__ import annotations

import os
import socket
import time

import pytest

from ssl_hybrid import wandb_server
from ssl_hybrid.loggers import resolve_wandb_mode
from ssl_hybrid.wandb_server import wandb_credentials_configured


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    # no W&B server is reachable from the test machine: the tests of online mode stand one in
    monkeypatch.setattr(wandb_server, "wandb_server_reachable", lambda host, port: True)
    return tmp_path / ".netrc"


def test_offline_without_credentials(no_credentials):
    assert not wandb_credentials_configured() and resolve_wandb_mode() == "offline"


def test_online_with_an_api_key(no_credentials, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_wandb_mode() == "online"


def test_online_with_a_netrc_entry_for_the_configured_host(no_credentials, monkeypatch):
    no_credentials.write_text("machine wandb.example.org login user password " + "k" * 40 + "\n")
    assert resolve_wandb_mode() == "offline"  # the key is for another host
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.example.org")
    assert resolve_wandb_mode() == "online"


@pytest.mark.parametrize("host", ["api.forge.coreweave.com", "api.wandb.ai"])
def test_online_with_a_netrc_entry_from_wandb_login(host, no_credentials):
    no_credentials.write_text(f"machine {host} login user password " + "k" * 40 + "\n")
    assert resolve_wandb_mode() == "online"


@pytest.mark.parametrize(
    "url, address", [("http://wandb.local", ("wandb.local", 80)), ("https://wandb.local", ("wandb.local", 443)),
                     ("http://wandb.local:8080", ("wandb.local", 8080))],
)  # fmt: skip
def test_the_server_is_probed_at_its_schemes_default_port(no_credentials, monkeypatch, url, address):
    probed = []
    monkeypatch.setattr(wandb_server, "wandb_server_reachable", lambda host, port: probed.append((host, port)) or True)
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", url)
    assert resolve_wandb_mode() == "online" and probed == [address]


def test_offline_with_a_warning_when_the_server_cannot_be_reached(monkeypatch, caplog):
    with socket.socket() as closed:  # a local port that nothing listens on refuses at once
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{port}")
    started = time.monotonic()
    assert resolve_wandb_mode() == "offline" and time.monotonic() - started < wandb_server.SERVER_PROBE_TIMEOUT_S
    assert f"http://127.0.0.1:{port} cannot be reached" in caplog.text


def test_wandb_mode_is_honoured(no_credentials, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_wandb_mode() == "disabled"


def test_the_configs_mode_overrides_the_environments_and_bad_modes_are_refused(no_credentials, monkeypatch, tmp_path):
    from hydra.errors import InstantiationException

    from conftest import compose_train
    from ssl_hybrid.loggers import instantiate_loggers

    monkeypatch.setenv("WANDB_MODE", "offline")
    (logger,) = instantiate_loggers(compose_train("logger=wandb", "logger.wandb.mode=disabled", output_dir=tmp_path).logger)
    assert logger._wandb_init["mode"] == "disabled" and os.environ["WANDB_MODE"] == "disabled"
    with pytest.raises(InstantiationException, match="logger.wandb.mode must be one of .* got 'of'"):
        instantiate_loggers(compose_train("logger=wandb", "logger.wandb.mode=of", output_dir=tmp_path).logger)
    with pytest.raises(InstantiationException, match="set logger.wandb.mode=offline"):
        instantiate_loggers(compose_train("logger=wandb", "+logger.wandb.offline=true", output_dir=tmp_path).logger)


def test_a_broken_netrc_counts_as_no_credentials(no_credentials):
    no_credentials.write_text("machine\n")
    assert resolve_wandb_mode() == "offline"


def test_runs_of_one_sweep_share_a_group(tmp_path):
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from conftest import compose_train
    from ssl_hybrid.loggers import sweep_group

    compose_train(output_dir=tmp_path / "run")
    assert sweep_group() is None  # a single run
    sweep = tmp_path / "2026-11-21_09-30-00"
    compose_train("hydra.mode=MULTIRUN", f"hydra.sweep.dir={sweep}", output_dir=sweep / "3")
    assert HydraConfig.get().mode == RunMode.MULTIRUN
    assert sweep_group() == "2026-11-21_09-30-00"
    # job folders nested by hydra.sweep.subdir (here a0.5/s1) stay in their sweep's group
    compose_train("hydra.mode=MULTIRUN", f"hydra.sweep.dir={sweep}", "hydra.sweep.subdir=a0.5/s1", output_dir=sweep / "a0.5" / "s1")
    assert sweep_group() == "2026-11-21_09-30-00"


def test_the_wandb_logger_of_a_sweep_job_takes_its_group_and_exports_its_mode(no_credentials, tmp_path):
    from conftest import compose_train
    from ssl_hybrid.loggers import wandb_logger

    sweep = tmp_path / "2026-11-22_07-30-00"
    compose_train("hydra.mode=MULTIRUN", f"hydra.sweep.dir={sweep}", output_dir=sweep / "0")
    logger = wandb_logger(str(tmp_path / "wandb"))
    assert logger._wandb_init["group"] == "2026-11-22_07-30-00" and logger._wandb_init["mode"] == "offline"
    assert os.environ["WANDB_MODE"] == "offline"  # what DDP children and wandb's service read


def test_a_job_takes_the_wandb_mode_it_exported_back_with_it(no_credentials, tmp_path):
    from conftest import compose_train
    from ssl_hybrid.hydra_ddp import ddp_ready_hydra_job
    from ssl_hybrid.loggers import wandb_logger

    compose_train(output_dir=tmp_path / "run")
    with ddp_ready_hydra_job():
        wandb_logger(str(tmp_path / "wandb"))
        assert os.environ["WANDB_MODE"] == "offline"
    assert "WANDB_MODE" not in os.environ  # the next job resolves its own mode, not this one's


def test_wandb_run_group_joins_several_sweeps_into_one_group_and_the_config_overrides_it(no_credentials, monkeypatch, tmp_path):
    from conftest import compose_train
    from ssl_hybrid.loggers import wandb_logger

    compose_train("hydra.mode=MULTIRUN", output_dir=tmp_path / "grid" / "0")
    monkeypatch.setenv("WANDB_RUN_GROUP", "alpha_study_s5")
    assert wandb_logger(str(tmp_path / "wandb"))._wandb_init["group"] == "alpha_study_s5"
    assert wandb_logger(str(tmp_path / "wandb"), group="mine")._wandb_init["group"] == "mine"


def test_loggers_continue_a_wandb_run_when_given_its_id(no_credentials, tmp_path):
    from omegaconf import OmegaConf
    from pytorch_lightning.loggers import CSVLogger, WandbLogger

    from conftest import compose_train
    from ssl_hybrid.loggers import instantiate_loggers

    configured = OmegaConf.to_container(compose_train("logger=wandb", output_dir=tmp_path / "run").logger, resolve=True)
    group = OmegaConf.create(
        {
            **configured,  # {"wandb": ssl_hybrid.loggers.wandb_logger}
            "lightning": {"_target_": "pytorch_lightning.loggers.WandbLogger", "offline": True, "save_dir": str(tmp_path)},
            "csv": {"_target_": "pytorch_lightning.loggers.CSVLogger", "save_dir": str(tmp_path)},
        }
    )
    ours, lightning, csv = instantiate_loggers(group, wandb_run_id="3q4aymop")
    assert isinstance(csv, CSVLogger) and isinstance(lightning, WandbLogger)
    assert ours._wandb_init["id"] == lightning._wandb_init["id"] == "3q4aymop"  # wandb.init(id=..., resume="allow")
    assert instantiate_loggers(OmegaConf.masked_copy(group, ["wandb"]))[0]._wandb_init["id"] is None
