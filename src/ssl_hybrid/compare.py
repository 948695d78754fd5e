"""``ssl-hybrid-compare``: aggregate finished runs into a table, ``alpha_curve.csv`` and ``alpha_curve.png``.

Runs come from run or multirun directories (each run's own ``metrics.json`` and ``.hydra/config.yaml``), or from
W&B (``--wandb ENTITY/PROJECT --group G``). Runs without a summary, or whose summary says they failed, are
listed as problems instead of being dropped silently. Where a series has several x values, a second table gives
its best one, and where there are several series, a third the best (series, x) of all (every one that
validation ties, with a warning); each is chosen on validation (``--select``), never on the reported test metric:
by default on the validation images classified as the test images are (``val/acc_as_tested``: by the label graph
where it classifies), or, if any validated run is older than that metric, on the best validation accuracy during
training (``val/acc_best``). ``--baseline X`` adds each point's difference from the run at x = X that saw the same
labels and training seed (``--pair-by``): the spread of those differences leaves out how hard each split is.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import statistics
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ssl_hybrid.run_summary import SUMMARY_FILE, flatten, read_summary
from ssl_hybrid.wandb_server import wandb_base_url, wandb_server_answers

CSV_FILE, PLOT_FILE = "alpha_curve.csv", "alpha_curve.png"
NELBO = "test/nelbo_bpd"
SERIES_KEYS = ("objective", "consistency_weight", "label_propagation", "classify_with", "alpha_schedule")
_ABSENT = object()  # Run.get's default where a key is missing, as opposed to present and null
SELECT_AS_TESTED, SELECT_DURING_TRAINING = "val/acc_as_tested", "val/acc_best"
PAIR_KEYS = ("data.split_seed", "seed")  # a run and its baseline saw the same labels and the same training noise
# settings that a point of the table should not average over unless asked to (--by splits them): warned about;
# a config section (model.backbone) stands for each of its keys
POOLING_KEYS = (
    "alpha", *SERIES_KEYS, "model._target_", "dataset", "data.root", "backbone", "model.backbone", "labels_per_class",
    "unlabeled_per_class", "trainer.max_steps", "batch_size", "unlabeled_ratio", "data.train_transforms", "data.strong_transforms", "latent_dim",
    "likelihood", "model.decoder_width", "model.kl_warmup_steps", "model.coupling_scale", "consistency_mask",
    "model.consistency_threshold", "distribution_alignment", "teacher_ema", "model.optimizer.lr",
    "model.optimizer.layer_decay", "trainer.devices", "trainer.num_nodes",  # under DDP, each process draws a batch
)  # fmt: skip


@dataclass
class Run:
    name: str
    summary: dict[str, Any] | None
    config: dict[str, Any] = field(default_factory=dict)  # flattened: {"model.alpha": 0.9, ...}
    unusable: str | None = None  # why not: its summary or config could not be read, or it is not a job of its sweep

    @property
    def problem(self) -> str | None:
        if self.unusable is not None:
            return self.unusable
        if self.summary is None:
            return f"no {SUMMARY_FILE} (crashed before finishing, or still running)"
        status = self.summary.get("status", "completed")
        if status != "completed":
            return f"{status}: {self.summary.get('error') or 'no error recorded'}"
        return None

    def get(self, key: str, default: Any = None) -> Any:
        """A run parameter or metric by config path (``model.alpha``) or summary key (``alpha``, ``test/acc``)."""
        if key in self.config:
            return self.config[key]
        summary = self.summary or {}
        return summary.get(key, summary.get(key.rsplit(".", 1)[-1], default))

    def has(self, key: str) -> bool:
        return self.get(key, _ABSENT) is not _ABSENT


def _is_run_dir(path: Path) -> bool:
    return (path / SUMMARY_FILE).is_file() or (path / ".hydra" / "config.yaml").is_file()


def _natural(path: Path) -> list[tuple[int, str]]:
    """Sort key that puts job 2 before job 10 (numbers before names where a folder holds both)."""
    return [(0, part.zfill(12)) if part.isdigit() else (1, part) for part in path.parts]


def find_run_dirs(paths: Iterable[str | Path]) -> list[Path]:
    """Run directories at or below each path (a run dir, a multirun dir, or a folder of either)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if not path.is_dir():
            raise FileNotFoundError(f"{path} is not a directory")
        below = [p for p in path.rglob("*") if p.is_dir() and _is_run_dir(p)]
        found += [path] if _is_run_dir(path) else sorted(below, key=_natural)
    return found


def planned_jobs(plan: Path) -> list[list[str]] | None:
    """The jobs a multirun's ``multirun.yaml`` (written before its first job) plans, in order, each as its
    ``key=value`` overrides, as Hydra's basic sweeper builds them: the sweeper's params overridden by the command
    line's, one value of each key per job. None for other sweepers, non-numbered job folders, and sweeps that
    cannot be expanded here (intervals; ``glob``, which needs the config's options)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ValueType

    hydra_cfg = OmegaConf.load(plan).hydra
    basic = str(hydra_cfg.sweeper.get("_target_", "")).endswith(".BasicSweeper")
    numbered = OmegaConf.to_container(hydra_cfg.sweep).get("subdir") == "${hydra.job.num}"  # left unresolved
    if not (basic and numbered):
        return None
    # unresolved: an override such as seed=${data.split_seed} is recorded as given, not as the plan's value of it
    sweeper_params = OmegaConf.to_container(hydra_cfg.sweeper, resolve=False).get("params") or {}
    params = [f"{key}={value}" for key, value in sweeper_params.items()]
    task = OmegaConf.to_container(hydra_cfg.overrides.task, resolve=False)
    options: dict[str, list[str]] = {}
    for override in OverridesParser.create().parse_overrides([*params, *task]):
        key = override.get_key_element()
        if not override.is_sweep_override():
            options[key] = [f"{key}={override.get_value_element_as_str()}"]
        elif override.is_discrete_sweep() and override.value_type != ValueType.GLOB_CHOICE_SWEEP:
            options[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            return None
    return [list(job) for job in itertools.product(*options.values())]


def checked_against_plans(runs: list[Run], paths: Iterable[str | Path]) -> list[Run]:
    """``runs`` checked against the jobs their multirun planned (``planned_jobs``). A numbered job folder the plan
    does not account for, e.g. left by an earlier sweep into the same folder, is marked as a problem, and a planned
    job without a run directory, e.g. after the sweep was killed, is added as one: neither is counted silently, nor
    just shrinks ``n``."""
    by_dir = {Path(run.name): run for run in runs}
    never_ran = []
    for path in map(Path, paths):
        for plan in sorted(path.rglob("multirun.yaml"), key=_natural):
            try:
                jobs = planned_jobs(plan)
            except (OSError, ValueError, yaml.YAMLError, OmegaConfBaseException, HydraException) as error:
                print(f"warning: {plan} unreadable, so its jobs cannot be checked against it: {error}", file=sys.stderr)
                continue
            if jobs is None:
                continue
            earlier = "from an earlier sweep into this folder?"
            for num, planned in enumerate(jobs):
                job = by_dir.get(plan.parent / str(num))
                if job is None:
                    reason = f"not started: no run directory, though {plan} plans {len(jobs)} jobs (still to come, or stopped)"
                    never_ran.append(Run(name=str(plan.parent / str(num)), summary=None, unusable=reason))
                elif not set(planned) <= set(_recorded_overrides(Path(job.name)) or planned):  # resumed: + ckpt_path
                    job.unusable = job.unusable or f"not the job {plan} plans as {num} ({' '.join(planned)}): {earlier}"
            for folder, job in by_dir.items():
                if folder.parent == plan.parent and folder.name.isdigit() and int(folder.name) >= len(jobs):
                    job.unusable = job.unusable or f"not a job of {plan}, which plans {len(jobs)}: {earlier}"
    return runs + never_ran


def _recorded_overrides(run_dir: Path) -> list[str] | None:
    """A run's command-line overrides as Hydra recorded them (none without ``.hydra/``)."""
    try:
        return list(OmegaConf.load(run_dir / ".hydra" / "overrides.yaml"))
    except (OSError, yaml.YAMLError, OmegaConfBaseException):
        return None


def resolved_config(config_file: Path) -> dict[str, Any]:
    """A run's saved Hydra config, flattened, with interpolations (``seed: ${data.split_seed}``) resolved. Values
    that resolve only inside the Hydra app (``${hydra:...}``) are left out, so the run's summary answers for them."""
    config = OmegaConf.load(config_file)
    if not OmegaConf.is_dict(config):
        raise ValueError("not a mapping of config keys")
    flat = flatten(OmegaConf.to_container(config))
    for key, value in list(flat.items()):
        if isinstance(value, str) and "${" in value:
            try:
                value = OmegaConf.select(config, key, throw_on_resolution_failure=True)
                flat[key] = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
            except OmegaConfBaseException:
                del flat[key]
    return flat


def load_run(path: Path) -> Run:
    summary_file, config_file = path / SUMMARY_FILE, path / ".hydra" / "config.yaml"
    try:
        summary = read_summary(path) if summary_file.is_file() else None
        if summary_file.is_file() and not isinstance(summary, dict):
            raise ValueError(f"a JSON {type(summary).__name__}, not an object")
    except (ValueError, OSError) as error:
        return Run(name=str(path), summary=None, unusable=f"unreadable {SUMMARY_FILE}: {error}")
    try:
        config = resolved_config(config_file) if config_file.is_file() else {}
    except (ValueError, OSError, yaml.YAMLError, OmegaConfBaseException) as error:
        return Run(name=str(path), summary=None, unusable=f"unreadable .hydra/config.yaml: {error}")
    return Run(name=str(path), summary=summary, config=config)


def load_wandb_runs(project_path: str, group: str) -> list[Run]:
    if not wandb_server_answers():  # wandb's API would retry for half a minute
        raise SystemExit(
            f"ssl-hybrid-compare: W&B API: {wandb_base_url()} cannot be reached (WANDB_BASE_URL sets the server); "
            "the runs' own folders compare offline: ssl-hybrid-compare RUN_OR_SWEEP_DIR..."
        )
    import wandb

    runs = []
    try:
        for run in wandb.Api(timeout=30).runs(project_path, filters={"group": group}):
            summary = {k: v for k, v in dict(run.summary).items() if not k.startswith("_")}
            if run.state != "finished":
                summary = {**summary, "status": run.state}
            runs.append(Run(name=f"{project_path}/{run.id}", summary=summary or None, config=flatten(dict(run.config))))
    # no API key or no server (wandb.errors.Error); no such project (wandb's public API raises a ValueError)
    except (wandb.errors.Error, ValueError) as error:
        raise SystemExit(f"ssl-hybrid-compare: W&B API: {error}") from None
    return runs


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def group_runs(runs: Sequence[Run], x: str, by: Sequence[str]) -> dict[tuple[str, Any], list[Run]]:
    """Runs by (series name, x value), sorted by series then x."""
    groups: dict[tuple[str, Any], list[Run]] = defaultdict(list)
    for run in runs:
        series = " / ".join(f"{key}={run.get(key)}" for key in by if run.get(key) is not None) or "all"
        groups[(series, run.get(x))].append(run)
    return dict(sorted(groups.items(), key=lambda item: (item[0][0], _number(item[0][1]) or 0.0)))


def pooling_warnings(runs: Sequence[Run], x: str, by: Sequence[str]) -> list[str]:
    """One line per point of the table that averages runs that differ in one of :data:`POOLING_KEYS`."""
    present = {key for run in runs for key in run.config}
    keys = [key for section in POOLING_KEYS for key in sorted(k for k in present if k.startswith(f"{section}.")) or [section]]
    warnings = []
    for (series, x_value), members in group_runs(runs, x, by).items():
        for key in keys:
            values = sorted({str(run.get(key)) for run in members})
            if len(values) > 1:
                warnings.append(f"{series} at {x}={x_value} pools runs with {key} {', '.join(values)} (split them with --by {key})")
    return warnings


def lacking_warnings(runs: Sequence[Run], metrics: Sequence[str]) -> list[str]:
    """One line per metric that some usable runs lack: the table's n leaves them out."""
    warnings = []
    for metric in dict.fromkeys(metrics):
        lacking = [run.name for run in runs if _number(run.get(metric)) is None]
        if lacking:
            warnings.append(f"{len(lacking)} of {len(runs)} runs have no {metric}, so no point counts them: {', '.join(lacking)}")
    return warnings


def aggregate(runs: Sequence[Run], x: str, metric: str, by: Sequence[str]) -> list[dict[str, Any]]:
    """One row per (series, x): n, mean and sample std of ``metric``, mean NELBO bits/dim."""
    rows = []
    for (series, x_value), members in group_runs(runs, x, by).items():
        values = [v for v in (_number(r.get(metric)) for r in members) if v is not None]
        nelbos = [v for v in (_number(r.get(NELBO)) for r in members) if v is not None]
        rows.append({
            "series": series, "x": x_value, **_mean_and_std(values),
            "nelbo_bpd": statistics.fmean(nelbos) if nelbos else None,
        })  # fmt: skip
    return rows


def _mean_and_std(values: Sequence[float]) -> dict[str, Any]:
    """``n``, ``mean`` and sample ``std`` (over n - 1) of a point's values; None where too few."""
    return {
        "n": len(values),
        "mean": statistics.fmean(values) if values else None,
        "std": statistics.stdev(values) if len(values) > 1 else None,
    }


def with_selection(rows: Sequence[dict[str, Any]], selection_rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows whose (series, x) has a mean selection metric, with it as ``selection``."""
    scores = {(row["series"], row["x"]): row["mean"] for row in selection_rows}
    return [{**row, "selection": score} for row in rows if (score := scores.get((row["series"], row["x"]))) is not None]


def _same_value(a: Any, b: Any) -> bool:
    """Equal as numbers where both are (``1`` from the command line, ``1.0`` from a run), else as text."""
    numbers = _number(a), _number(b)
    return numbers[0] == numbers[1] if None not in numbers else str(a) == str(b)


def paired_differences(
    runs: Sequence[Run], x: str, metric: str, by: Sequence[str], baseline: Any, pair_by: Sequence[str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """``metric`` of each run minus that of its partner: the run of its series at ``x`` = ``baseline`` with the same
    ``pair_by`` values (its split and training seed). One row per other point (series, x), with the number of pairs
    and their mean, sample std and smallest difference; and a warning for each point with runs left unpaired."""
    groups = group_runs(runs, x, by)
    partners: dict[tuple[str, tuple], float | None] = {}
    for (series, x_value), members in groups.items():
        if not _same_value(x_value, baseline):
            continue
        for run in members:
            key = tuple(run.get(k) for k in pair_by)
            if (series, key) in partners:
                pairing = ", ".join(f"{k}={v}" for k, v in zip(pair_by, key))
                raise SystemExit(
                    f"ssl-hybrid-compare: two runs of {series} at {x}={baseline} have {pairing}: split them with --by, "
                    "or pair by more keys (--pair-by)"
                )
            partners[series, key] = _number(run.get(metric))
    rows, warnings = [], []
    for (series, x_value), members in groups.items():
        if _same_value(x_value, baseline):
            continue
        diffs, unpaired = [], []
        for run in members:
            value, base = _number(run.get(metric)), partners.get((series, tuple(run.get(k) for k in pair_by)))
            if value is None or base is None:
                unpaired.append(run.name)
            else:
                diffs.append(value - base)
        if unpaired:
            warnings.append(
                f"{series} at {x}={x_value}: no {x}={baseline} partner with the same {', '.join(pair_by)} "
                f"(or no {metric}) for {', '.join(unpaired)}"
            )
        rows.append({"series": series, "x": x_value, **_mean_and_std(diffs), "min": min(diffs) if diffs else None})
    return rows, warnings


def format_differences(rows: Sequence[dict[str, Any]], x: str, metric: str) -> str:
    header = ["series", x, "pairs", f"{metric} difference mean +- std", "smallest"]
    body = [[r["series"], str(r["x"]), str(r["n"]), f"{_signed(r['mean'])} +- {_fmt(r['std'])}", _signed(r["min"])] for r in rows]
    return _columns(header, body)


TIE = 1e-6  # accuracies are float32 fractions: equal counts of correct images can differ in the 7th digit


def best_of(candidates: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The candidates (rows :func:`with_selection`) with the highest mean selection metric: one, or all of those
    that validation ties."""
    if not candidates:
        return []
    top = max(row["selection"] for row in candidates)
    return [row for row in candidates if top - row["selection"] <= TIE]


def series_choices(rows: Sequence[dict[str, Any]], candidates: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The candidates of each series that has more than one x value among ``rows``: what validation chooses among."""
    series = list(dict.fromkeys(row["series"] for row in candidates))
    multi = [name for name in series if sum(row["series"] == name for row in rows) > 1]
    return [[row for row in candidates if row["series"] == name] for name in multi]


def uneven_choice_warning(choice: Sequence[dict[str, Any]], x: str) -> str | None:
    """A warning when validation chooses among points of different numbers of runs: their means average different
    runs (a missing or failed one, say), so the choice can follow which runs are there rather than the setting."""
    counts = sorted({row["n"] for row in choice})
    if len(counts) < 2:
        return None
    points = "; ".join(f"{row['series']} at {x}={row['x']}: n={row['n']}" for row in choice)
    return f"the best {x} is chosen among points of unequal n ({points}): their means average different runs"


def format_best(rows: Sequence[dict[str, Any]], x: str, metric: str, select: str) -> str:
    header = ["series", f"best {x}", f"{select} mean", "n", f"{metric} mean +- std"]
    body = [[r["series"], str(r["x"]), _fmt(r["selection"]), str(r["n"]), f"{_fmt(r['mean'])} +- {_fmt(r['std'])}"] for r in rows]
    return _columns(header, body)


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.4f}"


def _has_nelbo_column(metric: str) -> bool:
    """Tables and csv files carry the mean NELBO as a column, unless it is the metric itself."""
    return metric != NELBO


def format_table(rows: Sequence[dict[str, Any]], x: str, metric: str) -> str:
    nelbo = _has_nelbo_column(metric)
    header = ["series", x, "n", f"{metric} mean +- std"] + ([f"{NELBO} mean"] if nelbo else [])
    body = [
        [row["series"], str(row["x"]), str(row["n"]), f"{_fmt(row['mean'])} +- {_fmt(row['std'])}"]
        + ([_fmt(row["nelbo_bpd"])] if nelbo else [])
        for row in rows
    ]
    return _columns(header, body)


def _columns(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)) for line in [header, *body]]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def write_csv(rows: Sequence[dict[str, Any]], path: Path, x: str, metric: str) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        nelbo = _has_nelbo_column(metric)
        writer.writerow(["series", x, "n", f"{metric}_mean", f"{metric}_std"] + ([f"{NELBO}_mean"] if nelbo else []))
        for row in rows:
            writer.writerow([row["series"], row["x"], row["n"], row["mean"], row["std"]] + ([row["nelbo_bpd"]] if nelbo else []))


def plot(rows: Sequence[dict[str, Any]], path: Path, x: str, metric: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for series in dict.fromkeys(row["series"] for row in rows):
        points = [r for r in rows if r["series"] == series and r["mean"] is not None and _number(r["x"]) is not None]
        if points:
            ax.errorbar(
                [float(r["x"]) for r in points], [r["mean"] for r in points], yerr=[r["std"] or 0.0 for r in points],
                marker="o", capsize=3, label=f"{series}",
            )  # fmt: skip
    ax.set_xlabel(x)
    ax.set_ylabel(f"{metric} (mean ± std over runs)")
    ax.grid(alpha=0.3)
    if ax.lines:
        # below the axes, so it never hides a point
        ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.14))
    else:
        print(f"warning: no {x} value is a number, so {path.name} has no curve (the table and csv have them)", file=sys.stderr)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ssl-hybrid-compare", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", help="run or multirun directories")
    parser.add_argument("--wandb", metavar="ENTITY/PROJECT", help="read runs from the W&B API instead")
    parser.add_argument("--group", help="W&B group of the runs (with --wandb)")
    parser.add_argument("--x", default="model.alpha", help="run parameter on the x axis (default: model.alpha)")
    parser.add_argument("--metric", default="test/acc", help="metric to aggregate (default: test/acc)")
    parser.add_argument(
        "--select",
        help=f"metric that picks each series' best x (default: {SELECT_AS_TESTED} if every run has it, else {SELECT_DURING_TRAINING})",
    )
    parser.add_argument(
        "--by", nargs="*", default=list(SERIES_KEYS), help=f"parameters that split runs into series (default: {' '.join(SERIES_KEYS)})"
    )
    parser.add_argument(
        "--baseline", metavar="X_VALUE",
        help="also print each point's difference from the run at this x of its series with the same --pair-by values",
    )  # fmt: skip
    parser.add_argument(
        "--pair-by", nargs="+", default=list(PAIR_KEYS), help=f"what pairs a run with its baseline (default: {' '.join(PAIR_KEYS)})"
    )
    parser.add_argument("--out", help="folder for alpha_curve.csv/png (default: the first PATH; with --wandb, here)")
    args = parser.parse_args(argv)
    if not args.paths and any(Path(key).is_dir() for key in args.by):
        parser.error("--by took the run directories for keys: put them before --by, or end its keys with --")
    if bool(args.paths) == bool(args.wandb):
        parser.error("give run directories, or --wandb ENTITY/PROJECT --group G")
    if args.wandb and not args.group:
        parser.error("--wandb needs --group")
    if args.out and Path(args.out).exists() and not Path(args.out).is_dir():
        parser.error(f"--out {args.out} is a file, not a folder")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.wandb:
            runs = load_wandb_runs(args.wandb, args.group)
        else:
            runs = checked_against_plans([load_run(p) for p in find_run_dirs(args.paths)], args.paths)
    except FileNotFoundError as error:
        raise SystemExit(f"ssl-hybrid-compare: {error}") from None
    good = [run for run in runs if run.problem is None]
    for run in runs:
        if run.problem is not None:
            print(f"problem: {run.name}: {run.problem}", file=sys.stderr)
    print(f"{len(runs)} runs found, {len(good)} usable, {len(runs) - len(good)} with problems")
    if not good:
        return 1
    validated = [run for run in good if _number(run.get(SELECT_DURING_TRAINING)) is not None]  # val_per_class=0: none
    select = args.select or (SELECT_AS_TESTED if all(run.has(SELECT_AS_TESTED) for run in validated) else SELECT_DURING_TRAINING)
    asked = [args.x, args.metric, select, *(args.by if args.by != list(SERIES_KEYS) else [])]
    unknown = [key for key in asked if not any(run.has(key) for run in good)]
    if unknown:
        raise SystemExit(f"ssl-hybrid-compare: no run has {', '.join(unknown)} (a config path such as model.alpha, or a metrics.json key)")
    for warning in pooling_warnings(good, args.x, args.by) + lacking_warnings(good, [args.metric, select]):
        print(f"warning: {warning}", file=sys.stderr)
    rows = aggregate(good, args.x, args.metric, args.by)
    print(format_table(rows, args.x, args.metric))
    candidates = with_selection(rows, aggregate(good, args.x, select, args.by))
    choices = series_choices(rows, candidates)
    picks = [best_of(choice) for choice in choices]
    if picks:
        print(f"\nbest {args.x} of each series, chosen by {select}:")
        print(format_best([row for pick in picks for row in pick], args.x, args.metric, select))
    if len({row["series"] for row in rows}) > 1 and candidates:
        choices.append(candidates)
        picks.append(best_of(candidates))
        print(f"\nbest of all series, chosen by {select}:")
        print(format_best(picks[-1], args.x, args.metric, select))
    for choice, pick in zip(choices, picks):
        if len(pick) > 1:
            tied = "; ".join(f"{row['series']} at {row['x']}" for row in pick)
            print(f"warning: {select} ties {tied}: validation cannot choose between them", file=sys.stderr)
        if (uneven := uneven_choice_warning(choice, args.x)) is not None:
            print(f"warning: {uneven}", file=sys.stderr)
    if args.baseline is not None:
        if not any(_same_value(row["x"], args.baseline) for row in rows):
            raise SystemExit(f"ssl-hybrid-compare: --baseline {args.baseline}: no run has {args.x}={args.baseline}")
        differences, unpaired = paired_differences(good, args.x, args.metric, args.by, args.baseline, args.pair_by)
        print(f"\n{args.metric} minus that of {args.x}={args.baseline}, paired by {', '.join(args.pair_by)}:")
        print(format_differences(differences, args.x, args.metric))
        for warning in unpaired:
            print(f"warning: {warning}", file=sys.stderr)
    out = Path(args.out or (args.paths[0] if args.paths else "."))
    out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out / CSV_FILE, args.x, args.metric)
    plot(rows, out / PLOT_FILE, args.x, args.metric)
    print(f"wrote {out / CSV_FILE} and {out / PLOT_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
