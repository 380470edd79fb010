"""Issue 19: the documented loops work end to end, failures say so with the right exit code.

Fast tests on hand-made worlds; the ones that train or start servers are marked ``slow``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner
from worlds import tiny_world

from telco_nbo.cli import app

runner = CliRunner()


def _service_log(path: Path) -> Path:
    """A prediction log written by the service's own record builder (identifiers among the features)."""
    from telco_nbo.features import FEATURE_COLUMNS, build_account_features
    from telco_nbo.serving.predlog import decision_records

    world = tiny_world()
    feats = build_account_features(world.tables, "2025-12-31")
    n = len(feats)
    cols = {c: feats[c].to_numpy() for c in feats.columns}
    decisions = [
        {"account_id": a, "household_id": h, "as_of": "2025-12-31", "offers": [], "suppressed": [],
         "model_versions": {"telco-churn": "1"}}
        for a, h in zip(feats["account_id"], feats["household_id"], strict=True)
    ]
    # What the service logs: the model inputs plus the identifiers and rule columns.
    names = [*FEATURE_COLUMNS, "account_id", "household_id", "account_lifecycle_stage"]
    recs = decision_records(
        decisions, cols, names,
        {"churn_probability": np.linspace(0.1, 0.4, n), "clv": np.full(n, 100.0), "retention_uplift": np.zeros(n)},
        np.full((n, 1), 0.2), ["DATA_UPSELL"], "req-1",
    )
    with path.open("w") as fh:
        for r in recs:
            fh.write(json.dumps(r, default=str) + "\n")
    return path


def test_prediction_log_with_identifiers_in_features_reads_as_a_window(tmp_path):
    """The service logs account_id/household_id inside ``features``: the window has them once."""
    from telco_nbo.monitoring.world_window import window_from_prediction_log

    log = _service_log(tmp_path / "decisions.jsonl")
    n = sum(1 for _ in log.open())
    win = window_from_prediction_log(log)
    assert win.columns.is_unique
    assert len(win) == n > 0
    assert win["account_id"].is_unique
    np.testing.assert_allclose(np.sort(win["churn_score"]), np.linspace(0.1, 0.4, len(win)))


@pytest.mark.integration
def test_monitor_reads_the_service_log_through_the_cli(tmp_path):
    """`telco-nbo monitor --current predictions/decisions.jsonl` runs (exit 0 on itself as reference)."""
    from telco_nbo.monitoring.world_window import window_from_prediction_log

    log = _service_log(tmp_path / "decisions.jsonl")
    ref = tmp_path / "reference.parquet"
    window_from_prediction_log(log).to_parquet(ref)
    res = runner.invoke(app, ["monitor", "--model", "telco-churn", "--current", str(log), "--reference", str(ref),
                              "--out", str(tmp_path / "m"), "--no-mlflow"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "m" / "summary.json").is_file()


def test_a_bug_exits_3_with_its_traceback_not_1():
    """Exit 1 means "a check failed"; an unexpected exception must not look like one."""
    import typer
    from typer.main import get_command

    from telco_nbo.cli._common import EXIT_INTERNAL_ERROR, AppGroup

    assert isinstance(get_command(app), AppGroup)
    probe = typer.Typer(cls=AppGroup, pretty_exceptions_enable=False)

    @probe.command()
    def boom() -> None:
        raise KeyError("not a user error")

    @probe.command()
    def fine() -> None:
        raise typer.Exit(code=1)

    res = runner.invoke(probe, ["boom"])
    assert res.exit_code == EXIT_INTERNAL_ERROR == 3
    assert "KeyError" in res.output and "internal error" in res.output
    assert runner.invoke(probe, ["fine"]).exit_code == 1
    # Usage errors stay Click's exit 2 with its message, on the real app too.
    res = runner.invoke(app, ["train", "churn", "--data", "x", "--trials", "-1"])
    assert res.exit_code == 2 and "--trials" in res.output and "internal error" not in res.output


def _cli(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300):
    """Run the installed ``telco-nbo`` in a fresh process (logging and warnings are process-global)."""
    import os
    import subprocess
    import sys

    exe = Path(sys.executable).parent / "telco-nbo"
    full = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_TRACKING", "TELCO_NBO_"))}
    full.update(env or {})
    return subprocess.run([str(exe), *args], cwd=cwd, env=full, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
@pytest.mark.integration
def test_mlflow_tracking_uri_is_honoured_and_overridden(tmp_path, monkeypatch):
    """MLflow's own variable counts; TELCO_NBO_TRACKING_URI and --tracking-uri win over it."""
    from telco_nbo.config import get_settings

    env_store = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.delenv("TELCO_NBO_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", env_store)
    assert get_settings().resolved_tracking_uri() == env_store
    assert get_settings(tracking_uri="sqlite:///x.db").resolved_tracking_uri() == "sqlite:///x.db"
    monkeypatch.setenv("TELCO_NBO_TRACKING_URI", "sqlite:///y.db")
    assert get_settings().resolved_tracking_uri() == "sqlite:///y.db"

    # Through the command line, in a fresh process: the store the variable names is the one used.
    res = _cli(["promote", "churn"], tmp_path, {"MLFLOW_TRACKING_URI": env_store})
    assert res.returncode == 2, res.stderr
    assert (tmp_path / "env.db").is_file() and not (tmp_path / "mlflow.db").exists()
    # Library chatter stays hidden without --verbose (MLflow's "Creating initial ... tables").
    assert " INFO " not in res.stderr and "Warning" not in res.stderr, res.stderr
    assert "no 'challenger' version" in res.stderr
    res = _cli(["promote", "churn", "--tracking-uri", f"sqlite:///{tmp_path / 'flag.db'}"], tmp_path,
               {"MLFLOW_TRACKING_URI": env_store})
    assert res.returncode == 2 and (tmp_path / "flag.db").is_file()


def test_artifacts_live_beside_a_sqlite_store_unless_a_root_is_set(tmp_path, monkeypatch):
    """One rule for every writer (training, tuning, readouts, monitoring): a store and its artifacts
    travel together, never in the folder the command ran from."""
    from telco_nbo.config import get_settings

    monkeypatch.delenv("TELCO_NBO_ARTIFACT_ROOT", raising=False)
    elsewhere = tmp_path / "elsewhere" / "mlflow.db"
    settings = get_settings(workdir=tmp_path / "cwd")
    assert settings.resolved_artifact_root(f"sqlite:///{elsewhere}") == (elsewhere.parent / "mlartifacts").as_uri()
    monkeypatch.chdir(tmp_path)
    assert settings.resolved_artifact_root("sqlite:///rel/x.db") == (tmp_path / "rel" / "mlartifacts").as_uri()
    assert settings.resolved_artifact_root("http://mlflow:5000") == (tmp_path / "cwd" / "mlartifacts").as_uri()
    assert get_settings(artifact_root="s3://bucket/a").resolved_artifact_root(f"sqlite:///{elsewhere}") == "s3://bucket/a"


@pytest.fixture(scope="module")
def small_world(tmp_path_factory) -> Path:
    """A 2,000-household synthetic world written to disk (a few seconds)."""
    from telco_nbo.data.io import write_world
    from telco_nbo.data.synthetic import generate_world

    out = tmp_path_factory.mktemp("world") / "d1"
    write_world(generate_world(2000, seed=7), out)
    return out


@pytest.mark.slow
@pytest.mark.integration
def test_mlflow_run_fails_on_missing_data_and_links_its_training_runs(tmp_path, small_world):
    """`mlflow run . -e train`: a failure is a failed project run; a success names its training runs."""
    import os
    import subprocess
    import sys

    from mlflow import MlflowClient

    repo = Path(__file__).resolve().parents[2]
    bindir = Path(sys.executable).parent
    store = f"sqlite:///{tmp_path / 'project.db'}"
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}", "MLFLOW_TRACKING_URI": store}

    def mlflow_run(*params: str) -> subprocess.CompletedProcess:
        cmd = [str(bindir / "mlflow"), "run", str(repo), "-e", "train", "--env-manager", "local"]
        for p in params:
            cmd += ["-P", p]
        return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)

    bad = mlflow_run("model=churn", f"data={tmp_path / 'missing'}")
    assert bad.returncode != 0, bad.stderr
    assert "does not exist" in bad.stdout + bad.stderr
    client = MlflowClient(store)
    (failed,) = client.search_runs([client.get_experiment_by_name("Default").experiment_id])
    assert failed.info.status == "FAILED"

    good = mlflow_run("model=churn", f"data={small_world}", "trials=1")
    assert good.returncode == 0, good.stderr[-3000:]
    # MLflow's own registration chatter stays out without --verbose (our line names the version).
    assert "Successfully registered model" not in good.stdout + good.stderr
    assert "churn: v1" in good.stdout + good.stderr
    project = client.search_runs([client.get_experiment_by_name("Default").experiment_id],
                                 filter_string="attributes.status = 'FINISHED'")[0]
    trained = project.data.tags["telco_nbo.trained.telco-churn"]
    child = client.get_run(trained)
    assert child.data.tags["mlflow.parentRunId"] == project.info.run_id
    assert child.data.tags["telco_nbo.project_run_id"] == project.info.run_id
    assert project.data.tags["telco_nbo.training_runs"] == "1"


REPO = Path(__file__).resolve().parents[2]


def test_readme_points_only_inside_the_repository(tmp_path):
    """A clone has everything the README uses: the IBM sample (with its licence) and the design doc."""
    import re

    from telco_nbo.data.samples import IBM_TELCO_CSV

    readme = (REPO / "README.md").read_text()
    assert "../shared" not in readme
    for link in re.findall(r"\]\(([^)#]+)\)", readme):
        if not link.startswith("http"):
            assert (REPO / link).exists(), link
    cmd = next(line for line in readme.splitlines() if "data import-csv" in line).split("#")[0].split()
    csv = REPO / cmd[cmd.index("import-csv") + 1]
    assert csv.resolve() == IBM_TELCO_CSV.resolve() and csv.is_file()
    assert "Apache License" in (csv.parent / "LICENSE-Apache-2.0.txt").read_text()
    assert "Apache License 2.0" in (csv.parent / "README.md").read_text()
    res = runner.invoke(app, ["data", "import-csv", str(csv), "--mapping", "ibm", "--out", str(tmp_path / "d2")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "d2").is_dir()


def test_extra_column_in_a_data_folder_exits_2_and_import_csv_accounts_for_it(tmp_path):
    """The README's promise: extra columns stop `data validate` (exit 2, named); import-csv lists them."""
    from telco_nbo.data.io import write_world
    from telco_nbo.data.samples import IBM_TELCO_CSV

    world = tiny_world()
    world.tables["lines"] = world.tables["lines"].assign(surprise=1)
    folder = tmp_path / "d"
    folder.mkdir()
    for name, frame in world.tables.items():  # written by hand: the writer itself refuses the column
        frame.to_parquet(folder / f"{name}.parquet")
    ok = tmp_path / "ok"
    write_world(tiny_world(), ok)
    (folder / "meta.json").write_text((ok / "meta.json").read_text())
    res = runner.invoke(app, ["data", "validate", str(folder)])
    assert res.exit_code == 2, res.output
    assert "unexpected column 'surprise'" in res.output and "lines" in res.output

    csv = tmp_path / "ibm_extra.csv"
    pd.read_csv(IBM_TELCO_CSV).head(400).assign(Surprise=lambda d: np.arange(len(d)) % 3).to_csv(csv, index=False)
    res = runner.invoke(app, ["data", "import-csv", str(csv), "--mapping", "ibm", "--out", str(tmp_path / "d2")])
    assert res.exit_code == 0, res.output
    assert "Surprise" in res.output


def _all_command_paths(group, prefix=()):  # noqa: ANN001, ANN202
    for name, cmd in group.commands.items():
        yield (*prefix, name)
        if hasattr(cmd, "commands"):
            yield from _all_command_paths(cmd, (*prefix, name))


def test_help_names_values_like_a_person_and_version_prints():
    """No Python type names (<str>, <list[str]>, {model}) in any --help; --version works."""
    import re

    from typer.main import get_command

    root = get_command(app)
    paths = [(), *_all_command_paths(root)]
    assert len(paths) > 8
    for path in paths:
        res = runner.invoke(app, [*path, "--help"], terminal_width=200)
        assert res.exit_code == 0, (path, res.output)
        bad = re.findall(r"<(?:str|path|bool|int|float|list\[[^\]]*\]|int range|float range)>|\{[a-z_]+\}", res.output)
        assert not bad, (path, bad)
    res = runner.invoke(app, ["--version"])
    from importlib.metadata import version

    assert res.exit_code == 0 and res.output.strip() == f"telco-nbo {version('telco-nbo')}"


def test_data_generate_checks_out_before_generating_and_names_overwrite(tmp_path):
    """A taken --out is refused at once (no progress bar, no generation) with the flag to use."""
    import time

    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    t0 = time.perf_counter()
    res = runner.invoke(app, ["data", "generate", "--households", "200000", "--out", str(taken)])
    assert res.exit_code == 2, res.output
    assert time.perf_counter() - t0 < 5  # 200,000 households would take a minute to generate
    assert "--overwrite" in res.output and "generating" not in res.output
    assert (taken / "keep.txt").read_text() == "mine"


def test_ranking_summary_says_who_got_nothing_and_what_was_never_chosen():
    from telco_nbo.nbo.summary import summarize_ranking

    frame = pd.DataFrame({
        "account_id": ["A1", "A1", "A2", "A3", "A3", "A4"],
        "offer_id": ["X", "Y", "X", "Y", "Z", "X"],
        "selected": [True, False, False, True, True, False],
        "rule_id": [None, "HH_ONE_PROMO", "ELIG_NETWORK", None, None, "HH_ONE_PROMO"],
    })
    s = summarize_ranking(frame, ["X", "Y", "Z", "W"])
    assert (s.accounts, s.offers_made, s.accounts_without_offer) == (4, 3, 2)
    assert s.share_without_offer == 0.5
    assert s.offers_by_id == {"Y": 1, "X": 1, "Z": 1} or sum(s.offers_by_id.values()) == 3
    assert s.never_chosen == ["W"]
    assert s.top_blocking_rules[0] == ("HH_ONE_PROMO", 2)
    text = "\n".join(s.lines())
    assert "2 accounts (50%) got no offer" in text and "Never chosen (1): W" in text


def test_long_steps_show_a_progress_bar_on_a_terminal_and_nothing_in_a_log():
    import io
    import time

    from rich.console import Console

    from telco_nbo.cli._common import steps

    tty = io.StringIO()
    with steps(3, "first", on=Console(file=tty, force_terminal=True, width=100)) as step:
        for name in ("loading", "scoring", "writing"):
            step(name)
            time.sleep(0.15)
    shown = tty.getvalue()
    assert "loading" in shown and "scoring" in shown and "2/3" in shown
    log = io.StringIO()
    with steps(2, "first", on=Console(file=log, force_terminal=False)) as step:
        step("a")
        step("b")
    assert "━" not in log.getvalue()


@pytest.mark.slow
@pytest.mark.integration
def test_evidently_runs_are_labeled_and_timed_by_their_window(tmp_path):
    """Each window's snapshots carry its name and its own time, so the UI plots windows in order."""
    import datetime as dt

    from evidently.ui.workspace import Workspace

    from telco_nbo.features import build_account_features, to_model_matrix
    from telco_nbo.monitoring import add_to_workspace, monitor

    feats = build_account_features(tiny_world().tables, "2025-12-31")
    frame = pd.concat([feats[["account_id"]], to_model_matrix(feats)], axis=1).assign(churn_score=0.1)
    frame = pd.concat([frame] * 30, ignore_index=True).assign(account_id=lambda d: [f"A{i:07d}" for i in range(len(d))])
    ws = tmp_path / "ws"
    windows = [("march", dt.datetime(2025, 3, 31)), ("june", dt.datetime(2025, 6, 30)), ("january", dt.datetime(2025, 1, 31))]
    for name, when in windows:
        out = monitor(frame, frame, model_name="telco-churn", window=name, window_time=when)
        assert out.result.window == name and out.result.window_time == when
        pid = add_to_workspace(out, ws)
    workspace = Workspace(str(ws))
    runs = [workspace.get_run(pid, r) for r in workspace.list_runs(pid)]
    seen = {(r.name, r.timestamp.replace(tzinfo=None)) for r in runs}
    for name, when in windows:
        assert (f"headline · {name}", when) in seen and (f"drift · {name}", when) in seen


@pytest.mark.slow
def test_train_progress_counts_optuna_trials(tmp_path):
    """The training bar can say "trial 3/5": tune() reports each finished trial to the caller's hook."""
    import xgboost as xgb
    from sklearn.datasets import make_classification

    from telco_nbo.tuning import TRIAL_PROGRESS, tune

    X, y = make_classification(n_samples=400, n_features=5, random_state=0)
    X = pd.DataFrame(X, columns=[f"account_x{i}" for i in range(5)])
    seen: list[tuple[str, int, int]] = []
    token = TRIAL_PROGRESS.set(lambda name, done, total: seen.append((name, done, total)))
    try:
        tune(lambda p: xgb.XGBClassifier(n_estimators=5, n_jobs=1, **p),
             lambda t: {"max_depth": t.suggest_int("max_depth", 1, 3)},
             X.iloc[:300], y[:300], X.iloc[300:], y[300:], n_trials=3, study_name="progress-test",
             storage=f"sqlite:///{tmp_path / 'o.db'}", tracking=False, seed=1)
    finally:
        TRIAL_PROGRESS.reset(token)
    assert seen == [("progress-test", 1, 3), ("progress-test", 2, 3), ("progress-test", 3, 3)]
