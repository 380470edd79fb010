"""Scale-out on a real 2-worker LocalCluster: features, training, tuning and ranking match in-process.

One module-scoped cluster and one ~3,000-household world serve every test (cluster start-up and
generation dominate the cost).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from telco_nbo.data.io import load_world
from telco_nbo.data.synthetic import generate_world
from telco_nbo.data.validate import validate_world
from telco_nbo.errors import ConfigError
from telco_nbo.features import build_account_features, make_churn_labels, to_model_matrix
from telco_nbo.models.churn import default_search_space, make_churn_classifier
from telco_nbo.nbo.catalog import load_catalog
from telco_nbo.nbo.rank import rank_batch
from telco_nbo.nbo.scores import Scores
from telco_nbo.scale import (
    AUC_TOLERANCE,
    ChurnModelFactory,
    build_account_features_dask,
    dask_client,
    features_meta,
    generate_world_dask,
    household_partition,
    load_partitioned_world,
    partition_world,
    rank_batch_dask,
    rank_world_to_parquet,
    scatter_partitions,
    shared_storage_url,
    split_column,
    train_churn_dask,
    tune_parallel,
    write_partitioned_world,
    write_ranking,
)
from telco_nbo.scale.cluster import ARROW_POOL_ENV, LOCAL_ARROW_POOL, LOCAL_WORKER_CONFIG

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(300)]

N_HOUSEHOLDS = 3_000
N_PARTITIONS = 4
# Fixed trees, no early stopping, no row subsampling. With subsample < 1 every XGBoost worker draws
# its own rows, so a distributed model depends on which worker holds which partition (CI once saw
# xgboost.dask 0.719 against external memory 0.741 on these ~700 holdout rows, where this machine
# gave 0.732). Without it, in-process, xgboost.dask and external-memory training build the same
# trees (the merged quantile sketch equals the single-process one here), so the tests compare
# predictions, not only AUCs. The default subsample (0.8) is compared at 1M accounts in
# benchmarks/RESULTS.md, where the holdout is large enough for the AUC to say something.
CALLER_ARROW_POOL = os.environ.get(ARROW_POOL_ENV)

MODEL_PARAMS = {"n_estimators": 120, "learning_rate": 0.08, "max_depth": 3, "subsample": 1.0}


@pytest.fixture(scope="module")
def client():
    with dask_client("local") as c:
        yield c


@pytest.fixture(scope="module")
def world():
    return generate_world(N_HOUSEHOLDS, 11)


@pytest.fixture(scope="module")
def features(world) -> pd.DataFrame:
    return build_account_features(world.tables, world.meta["as_of"])


@pytest.fixture(scope="module")
def pworld(world, client):
    return scatter_partitions(world, N_PARTITIONS, client)


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def test_local_cluster_workers_keep_no_lifetime_history(client):
    # A worker's profiler history grows with its lifetime (one call tree per second, 2 x 1,000
    # kept), which made a long ranking run's worker peak higher than a short one's: the local
    # cluster's workers run without it, restarted workers too, and the caller's config is untouched.
    import time

    import dask

    def state(dask_worker):
        import pyarrow

        return (dask.config.get("distributed.worker.profile.enabled"),
                tuple(sorted(k for k in dask_worker.periodic_callbacks if k.startswith("profile"))),
                len(dask_worker.profile_history), dask_worker.monitor.maxlen,
                pyarrow.default_memory_pool().backend_name)

    def run_a_while(c):
        # A task longer than a profile cycle (1 s): with the profiler on, its history has an entry.
        c.gather([c.submit(time.sleep, 1.5, workers=[w], pure=False) for w in c.run(lambda: 0)])
        return set(c.run(state).values())

    # ... and with Arrow's system allocator, whose freed memory goes back at once (mimalloc's
    # retained pages varied by ~80 MB between runs of one partition: see LOCAL_ARROW_POOL)
    expected = (False, (), 0, LOCAL_WORKER_CONFIG["distributed.admin.system-monitor.log-length"],
                CALLER_ARROW_POOL or LOCAL_ARROW_POOL)
    assert run_a_while(client) == {expected}
    assert dask.config.get("distributed.worker.profile.enabled") is True
    with dask_client("local", n_workers=1) as one:
        one.restart()
        assert run_a_while(one) == {expected}


def test_local_workers_use_the_system_arrow_pool_even_when_spawned_from_a_script(tmp_path):
    # A worker spawned from a script re-imports the script's imports (here pandas, hence pyarrow)
    # before a nanny's environment applies, and Arrow fixes its C++ default pool when first asked:
    # the pool must still be the system one, for the Parquet writer too (which takes the C++
    # default, not pyarrow.set_memory_pool's: mimalloc must see no allocation), also after a
    # restart; the caller's environment is as it was once the cluster is gone. An unknown pool
    # name is refused.
    import subprocess
    import sys

    script = tmp_path / "uses_a_cluster.py"
    script.write_text(
        "import os\n"
        "import pandas  # loads pyarrow at import, as a notebook or script would\n"
        "from telco_nbo.scale import dask_client\n\n"
        "def pool(path):\n"
        "    import pyarrow\n"
        "    pandas.DataFrame({'x': range(200_000)}).to_parquet(path)\n"
        "    return pyarrow.default_memory_pool().backend_name, pyarrow.mimalloc_memory_pool().max_memory()\n\n"
        "if __name__ == '__main__':\n"
        f"    path = {str(tmp_path / 'w.parquet')!r}\n"
        "    with dask_client('local', n_workers=1) as c:\n"
        "        before = set(c.run(pool, path).values())\n"
        "        c.restart()\n"
        "        after = set(c.run(pool, path).values())\n"
        "    print(sorted(before), sorted(after), os.environ.get('ARROW_DEFAULT_MEMORY_POOL'))\n")
    env = {k: v for k, v in os.environ.items() if k != ARROW_POOL_ENV}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[('system', 0)] [('system', 0)] None"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ARROW_POOL_ENV, "tcmalloc")
        with pytest.raises(ConfigError, match="unknown Arrow memory pool ARROW_DEFAULT_MEMORY_POOL='tcmalloc'"):
            with dask_client("local", n_workers=1):
                pass


def test_partitions_hold_whole_households(world):
    parts = partition_world(world, N_PARTITIONS)
    assert sum(len(p.tables["households"]) for p in parts) == N_HOUSEHOLDS
    for name in ("accounts", "lines", "usage_monthly", "support_tickets", "contacts"):
        assert sum(len(p.tables[name]) for p in parts) == len(world.tables[name]), name
    for p, part in enumerate(parts):
        validate_world(part.tables)  # each partition is a complete, consistent sub-world
        assert (household_partition(part.tables["accounts"]["household_id"], N_PARTITIONS) == p).all()
    # stable: same ids, same partitions, whatever the order
    ids = world.tables["households"]["household_id"].to_numpy()
    assert np.array_equal(household_partition(ids[::-1], 7)[::-1], household_partition(ids, 7))
    with pytest.raises(ConfigError, match="n_partitions"):
        partition_world(world, 0)


def test_features_on_dask_equal_in_process(pworld, features, world):
    ddf = build_account_features_dask(pworld)
    assert ddf.npartitions == N_PARTITIONS
    got = ddf.compute()
    pd.testing.assert_frame_equal(_sorted(got, ["account_id"]), features)
    # the meta Dask was promised is what the partitions really hold
    pd.testing.assert_series_equal(features_meta().dtypes, got.dtypes)
    labelled = build_account_features_dask(pworld, label_horizon_days=90).compute()
    labels = make_churn_labels(world.tables, world.meta["as_of"], 90)
    assert np.array_equal(_sorted(labelled, ["account_id"])["churned"].to_numpy(), labels["churned"].to_numpy())


def test_generated_partitions_are_deterministic_unique_and_round_trip(client, tmp_path):
    pw = generate_world_dask(240, 5, 3, client)
    a = pw.table("accounts").compute()
    b = generate_world_dask(240, 5, 3, client).table("accounts").compute()
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
    assert a["account_id"].is_unique and a["account_id"].str.match(r"^A\d{4}-\d{7}$").all()
    path = write_partitioned_world(pw, tmp_path / "w", client)
    union = load_world(path)  # the top-level folder is a normal data folder, validated on load
    assert len(union.tables["households"]) == 240
    assert union.tables["experiments"]["experiment_id"].is_unique
    assert len(union.tables["accounts"]) == len(a)
    reread = load_partitioned_world(path, client)
    assert reread.n_partitions == 3
    with pytest.raises(ConfigError, match="not empty"):
        write_partitioned_world(pw, path, client)
    with pytest.raises(ConfigError, match="households"):
        generate_world_dask(2, 5, 3, client)


def test_dask_training_matches_in_process_and_serves(pworld, world, features, client, tracking_uri):
    from telco_nbo.tracking import load_champion

    result = train_churn_dask(pworld, client, params=MODEL_PARAMS, early_stopping_rounds=None, seed=3,
                              tracking_uri=tracking_uri)
    # in-process: same rows, same household split, same parameters
    labels = make_churn_labels(world.tables, world.meta["as_of"], 90)["churned"].to_numpy()
    split = split_column(features["household_id"], 0.25, 0.2, 3)
    X = to_model_matrix(features)
    local = make_churn_classifier(**MODEL_PARAMS, random_state=3).fit(X[split == 0], labels[split == 0])
    auc_local = roc_auc_score(labels[split == 2], local.predict_proba(X[split == 2])[:, 1])
    auc_dask = result.holdout_metrics["roc_auc"]
    assert result.n_rows == {"train": int((split == 0).sum()), "valid": int((split == 1).sum()),
                             "holdout": int((split == 2).sum())}
    assert auc_dask > 0.7
    print(f"holdout AUC dask={auc_dask:.4f} in-process={auc_local:.4f}")
    assert abs(auc_dask - auc_local) <= AUC_TOLERANCE, (auc_dask, auc_local)
    np.testing.assert_allclose(result.model.predict_proba(X[split == 2])[:, 1],
                               local.predict_proba(X[split == 2])[:, 1], atol=1e-6)
    # registered like any model, and the champion loads as a plain XGBClassifier
    assert result.model_version == 1 and "champion" in result.aliases
    champion, info = load_champion("churn", tracking_uri)
    assert type(champion).__name__ == "XGBClassifier"
    assert info.feature_names == tuple(X.columns)
    np.testing.assert_allclose(champion.predict_proba(X[split == 2])[:, 1],
                               result.model.predict_proba(X[split == 2])[:, 1], rtol=1e-6)


def test_tuning_in_two_processes_shares_one_study(features, world, client, tmp_path, tracking_uri):
    import optuna
    from mlflow import MlflowClient

    labels = make_churn_labels(world.tables, world.meta["as_of"], 90)["churned"].to_numpy()
    split = split_column(features["household_id"], 0.25, 0.2, 3)
    X = to_model_matrix(features)
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    mlc = MlflowClient(tracking_uri)
    parent = mlc.create_run(mlc.create_experiment("scale-tuning")).info.run_id
    result = tune_parallel(
        ChurnModelFactory({"n_estimators": 40}), default_search_space,
        X[split == 0], labels[split == 0], X[split == 1], labels[split == 1],
        n_trials=4, n_processes=2, study_name="scale-test", storage=storage, client=client, seed=1,
        metric="logloss", tracking=True, tracking_uri=tracking_uri, parent_run_id=parent,
        report_interval=10,
    )
    assert result.trials_per_process == (2, 2)
    assert len(result.per_process) == 2
    study = optuna.load_study(study_name="scale-test", storage=shared_storage_url(storage))
    assert len(study.trials) == 4 == result.n_trials
    assert sorted(t.number for t in study.trials) == list(range(4))
    # the two processes proposed different points (different sampler seeds)
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 4
    nested = mlc.search_runs([mlc.get_run(parent).info.experiment_id],
                             filter_string=f"tags.mlflow.parentRunId = '{parent}'")
    assert len(nested) == 4
    assert sorted(int(r.data.tags["telco_nbo.optuna.trial_number"]) for r in nested) == list(range(4))


def test_shared_storage_url():
    assert shared_storage_url("sqlite:///x/optuna.db") == "sqlite:///x/optuna.db?timeout=60"
    assert shared_storage_url("sqlite:///x.db?timeout=5") == "sqlite:///x.db?timeout=5"
    assert shared_storage_url("postgresql://u:p@h/db") == "postgresql://u:p@h/db"
    with pytest.raises(ConfigError, match="in-memory"):
        shared_storage_url("sqlite:///:memory:")


def test_ranking_on_dask_equals_in_process(pworld, features, client, tmp_path):
    catalog = load_catalog()
    rng = np.random.default_rng(4)
    ids = features["account_id"].to_numpy()
    offer_ids = [o.offer_id for o in catalog.offers]
    n, m = len(ids), len(offer_ids)
    scores = Scores(
        accounts=pd.DataFrame({"account_id": ids, "churn_probability": rng.beta(1.5, 8, n),
                               "clv": rng.gamma(3, 250, n), "retention_uplift": rng.normal(0.02, 0.04, n).clip(-0.2, 0.3)}),
        offers=pd.DataFrame({"account_id": np.repeat(ids, m), "offer_id": np.tile(offer_ids, n),
                             "propensity": rng.beta(1.2, 8, n * m)}),
        model_versions={"telco-churn": "1"},
    )
    as_of = pd.Timestamp("2025-12-31")
    expected = rank_batch(features, scores, catalog, None, 3, as_of=as_of)
    ranked = rank_batch_dask(build_account_features_dask(pworld), scores, catalog, None, 3, as_of=as_of)
    got = ranked.compute()
    keys = ["account_id", "offer_id"]
    pd.testing.assert_frame_equal(_sorted(got, keys), _sorted(expected, keys))
    assert expected["selected"].any() and (~expected["selected"]).any()
    # a frame split by row count (households straddle partitions) is re-partitioned by household first
    import dask.dataframe as dd

    from telco_nbo.scale import by_household
    from telco_nbo.scale.cluster import same_dtypes

    with same_dtypes():
        by_rows = dd.from_pandas(features, npartitions=3, sort=False)
    regrouped = rank_batch_dask(by_household(by_rows), scores, catalog, None, 3, as_of=as_of).compute()
    pd.testing.assert_frame_equal(_sorted(regrouped, keys), _sorted(expected, keys))
    # A campaign capacity binds across partitions: Dask refuses it rather than apply it per partition.
    from telco_nbo.nbo.config import NboConfig

    with pytest.raises(ConfigError, match="capacity"):
        rank_batch_dask(by_household(by_rows), scores, catalog, NboConfig(capacity={"max_contacts": 10}), 3)
    out = tmp_path / "ranking.parquet"
    summary: dict = {}
    assert write_ranking(ranked, out, client, summary=summary) == len(expected)
    chosen = expected.loc[expected["selected"], "offer_id"]
    assert summary["accounts"] == expected["account_id"].nunique() and summary["selected"] == len(chosen)
    assert summary["by_offer"] == chosen.value_counts().to_dict()
    pd.testing.assert_frame_equal(_sorted(pd.read_parquet(out), keys), _sorted(expected, keys))
    # one task per partition (read, features, rank and write in chunks of households): the same rows and counts
    for chunk in (100, 10_000):  # several chunks per partition; one
        fused, fused_summary = tmp_path / f"fused_{chunk}.parquet", {}
        assert rank_world_to_parquet(pworld, scores, fused, client, catalog=catalog, top_k=3, as_of=as_of,
                                     summary=fused_summary, chunk_accounts=chunk) == len(expected)
        assert fused_summary == summary
        pd.testing.assert_frame_equal(_sorted(pd.read_parquet(fused), keys), _sorted(expected, keys))


@pytest.fixture(scope="module")
def champions(tmp_path_factory):
    """The four champions trained (tiny budgets) into a real MLflow SQLite registry."""
    from serving_support import trained_store

    return trained_store(tmp_path_factory.mktemp("scale-champions"), households=1200, seed=5)


def test_rank_cli_on_dask_with_real_champions_equals_in_process(champions, client, tmp_path, monkeypatch):
    """`rank --scheduler` (fast champion scorer per worker) writes the rows of the in-process `rank`."""
    from typer.testing import CliRunner

    import telco_nbo.scale.rank as scale_rank
    from telco_nbo.cli import app

    monkeypatch.setattr(scale_rank, "RANK_CHUNK_ACCOUNTS", 60)  # several chunks per partition here

    # A partitioned folder as `data generate --scheduler` writes it; its top level is a plain data folder.
    data = write_partitioned_world(generate_world_dask(900, 13, 3, client), tmp_path / "world", client)
    runner = CliRunner()
    local, dist = tmp_path / "in_process.parquet", tmp_path / "dask.parquet"
    common = ["rank", "--data", str(data), "--tracking-uri", champions["uri"], "--top-k", "3"]
    r_local = runner.invoke(app, [*common, "--out", str(local)])
    assert r_local.exit_code == 0, r_local.output
    r = runner.invoke(app, [*common, "--out", str(dist), "--scheduler", client.scheduler.address])
    assert r.exit_code == 0, r.output
    assert "on Dask" in r.output
    # the summary line (counted by the workers, the file is not read back) says what in-process says
    import re

    def counts(text: str) -> list[str]:
        return re.search(r"ranked ([\d,]+) accounts.*?: ([\d,]+) offers, ([\d,]+) suppressed", " ".join(text.split())).groups()

    assert counts(r.output) == counts(r_local.output)
    # ... and so does the human summary: accounts without an offer, offers never chosen, top rules
    def human(text: str) -> list[str]:
        flat = " ".join(text.split())
        found = [re.search(p, flat).group(0) for p in (r"\(\d+%\) got no offer", r"Never chosen[^.]*\.|Every catalog offer",
                                                         r"Rules that removed most offers: [^.]*\.")]
        return [*found[:2], sorted(found[2].split(": ", 1)[1].rstrip(".").split(", "))]  # ties may swap order

    assert human(r.output) == human(r_local.output)
    keys = ["account_id", "offer_id"]
    expected, got = _sorted(pd.read_parquet(local), keys), _sorted(pd.read_parquet(dist), keys)
    pd.testing.assert_frame_equal(got, expected)
    # real champions: all four versions recorded, model reason codes on returned offers
    assert set(json_versions(got)) == {"telco-churn", "telco-propensity", "telco-uplift", "telco-clv"}
    chosen = got[got["selected"]]
    assert len(chosen) and chosen["reasons"].map(lambda rs: any("churn risk" in r for r in rs)).any()

    # --timing-rule: the same rule applied on both paths gives the same rows (here: control won
    # everywhere, so the timing-governed retention offers vanish)
    from telco_nbo.experiments.timing_rule import SegmentDecision, TimingRule

    rule = TimingRule(
        experiment_id="EXP-TIMING-1", segment_column="product_mix", metric="churned", higher_is_better=False,
        control_arm="control", alpha=0.05, correction="holm", trustworthy=True,
        decisions=[SegmentDecision(segment=s, arm="control", reason="control wins")
                   for s in ("mobile_only", "bundle", "home_only")],
    )
    (tmp_path / "rule.json").write_text(rule.model_dump_json())
    ruled = [*common, "--timing-rule", str(tmp_path / "rule.json")]
    r = runner.invoke(app, [*ruled, "--out", str(tmp_path / "ruled_local.parquet")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, [*ruled, "--out", str(tmp_path / "ruled_dask.parquet"), "--scheduler", client.scheduler.address])
    assert r.exit_code == 0, r.output
    ruled_local = _sorted(pd.read_parquet(tmp_path / "ruled_local.parquet"), keys)
    pd.testing.assert_frame_equal(_sorted(pd.read_parquet(tmp_path / "ruled_dask.parquet"), keys), ruled_local)
    assert not ruled_local.equals(expected)


def json_versions(frame: pd.DataFrame) -> dict:
    import json

    (value,) = frame["model_versions"].unique()
    return json.loads(value)


def test_rank_cli_on_dask_without_champions_fails_cleanly(tmp_path, tracking_uri):
    from typer.testing import CliRunner

    from telco_nbo.cli import app

    write_world_dir = tmp_path / "data"
    from telco_nbo.data.io import write_world

    write_world(generate_world(30, 1), write_world_dir)
    out = tmp_path / "r.parquet"
    r = CliRunner().invoke(app, ["rank", "--data", str(write_world_dir), "--out", str(out), "--tracking-uri", tracking_uri,
                                 "--scheduler", "local"])
    assert r.exit_code != 0
    assert "no champion model registered for telco-churn" in r.output
    assert not out.exists()


@pytest.mark.parametrize("model", ["uplift", "all"])
def test_train_cli_on_dask_names_the_supported_kinds_and_why(model, tmp_path):
    from typer.testing import CliRunner

    from telco_nbo.cli import app

    r = CliRunner().invoke(app, ["train", model, "--data", str(tmp_path), "--scheduler", "local",
                                 "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"])
    assert r.exit_code == 2
    text = " ".join(r.output.split())
    assert "trains churn and propensity only" in text and "retention experiment" in text
    assert not (tmp_path / "m.db").exists()  # refused before anything was opened or written


def test_dask_propensity_training_matches_in_process_and_serves(pworld, world, client, tracking_uri, tmp_path):
    from telco_nbo.scale.propensity import train_propensity_dask
    from telco_nbo.scale.train import split_column as split_of
    from telco_nbo.tracking import load_champion
    from telco_nbo.training.data import prepare_offers

    result = train_propensity_dask(pworld, client, params=MODEL_PARAMS, early_stopping_rounds=None, seed=3,
                                   tracking_uri=tracking_uri)
    # in-process: the rows of telco_nbo.training (same snapshot dates, same household split)
    offers = prepare_offers(world.tables, pd.Timestamp(world.meta["as_of"]))
    split = split_of(pd.Series(offers.household_ids), 0.25, 0.2, 3)
    assert result.n_rows == {"train": int((split == 0).sum()), "valid": int((split == 1).sum()),
                             "holdout": int((split == 2).sum())}
    X, y = offers.X, offers.y
    local = make_churn_classifier(**MODEL_PARAMS, random_state=3).fit(X[split == 0], y[split == 0])
    auc_local = roc_auc_score(y[split == 2], local.predict_proba(X[split == 2])[:, 1])
    auc_dask = result.holdout_metrics["roc_auc"]
    print(f"propensity holdout AUC dask={auc_dask:.4f} in-process={auc_local:.4f}")
    # A sanity floor (it learned something): the world's contacts now include 30 % uniform exploration,
    # whose offers mostly lack a need, and this small world gives ~0.68 either way.
    assert auc_dask > 0.6 and abs(auc_dask - auc_local) <= AUC_TOLERANCE, (auc_dask, auc_local)
    np.testing.assert_allclose(result.model.predict_proba(X[split == 2])[:, 1],
                               local.predict_proba(X[split == 2])[:, 1], atol=1e-6)
    assert any(k.startswith("auc_") and k != "auc_per_offer_mean" for k in result.holdout_metrics)
    # registered like the in-process model, with the offers table the scorers read
    assert result.model_version == 1 and "champion" in result.aliases
    champion, info = load_champion("propensity", tracking_uri)
    assert info.feature_names == tuple(X.columns)
    np.testing.assert_allclose(champion.predict_proba(X[split == 2])[:, 1], result.model.predict_proba(X[split == 2])[:, 1],
                               rtol=1e-6)
    import json

    from mlflow import MlflowClient

    from telco_nbo.training.pipeline import OFFERS_ARTIFACT

    path = MlflowClient(tracking_uri).download_artifacts(info.run_id, OFFERS_ARTIFACT, str(tmp_path))
    stored = pd.DataFrame(json.loads(open(path).read()))
    assert stored["offer_id"].tolist() == world.tables["offers"]["offer_id"].tolist()


def test_external_memory_training_matches_in_process_and_leaves_no_shards(pworld, world, features, client,
                                                                          tracking_uri, tmp_path):
    """The external-memory fit (shards on disk, ExtMemQuantileDMatrix per worker) trains the same model."""
    import mlflow

    from telco_nbo.scale.extmem import deal

    shard_parent = tmp_path / "shards"
    result = train_churn_dask(pworld, client, params=MODEL_PARAMS, early_stopping_rounds=None, seed=3,
                              tracking_uri=tracking_uri, external_memory=True, shard_dir=str(shard_parent))
    labels = make_churn_labels(world.tables, world.meta["as_of"], 90)["churned"].to_numpy()
    split = split_column(features["household_id"], 0.25, 0.2, 3)
    X = to_model_matrix(features)
    local = make_churn_classifier(**MODEL_PARAMS, random_state=3).fit(X[split == 0], labels[split == 0])
    auc_local = roc_auc_score(labels[split == 2], local.predict_proba(X[split == 2])[:, 1])
    assert result.n_rows == {"train": int((split == 0).sum()), "valid": int((split == 1).sum()),
                             "holdout": int((split == 2).sum())}
    assert result.model.get_booster().num_boosted_rounds() == MODEL_PARAMS["n_estimators"]
    in_memory = train_churn_dask(pworld, client, params=MODEL_PARAMS, early_stopping_rounds=None, seed=3, log=False)
    auc_ext, auc_dask = result.holdout_metrics["roc_auc"], in_memory.holdout_metrics["roc_auc"]
    print(f"holdout AUC external memory={auc_ext:.4f} xgboost.dask={auc_dask:.4f} in-process={auc_local:.4f}")
    # The same trees as the xgboost.dask model it replaces and as in-process training: the data on
    # disk changes where rows live, not what is learnt (see MODEL_PARAMS for why subsample is 1).
    holdout = X[split == 2]
    p_ext = result.model.predict_proba(holdout)[:, 1]
    np.testing.assert_allclose(p_ext, in_memory.model.predict_proba(holdout)[:, 1], atol=1e-6)
    np.testing.assert_allclose(p_ext, local.predict_proba(holdout)[:, 1], atol=1e-6)
    assert auc_ext > 0.7 and abs(auc_ext - auc_dask) <= AUC_TOLERANCE and abs(auc_ext - auc_local) <= AUC_TOLERANCE
    # the shards are temporary: nothing is left in the folder given
    assert shard_parent.exists() and not any(shard_parent.iterdir())
    run = mlflow.MlflowClient(tracking_uri).get_run(result.run_id)
    assert run.data.tags["telco_nbo.scale.trained_on"] == "xgboost.collective+external-memory"
    # early stopping on the validation shards keeps the best round, as the wrapper reports it
    stopped = train_churn_dask(pworld, client, params={**MODEL_PARAMS, "n_estimators": 400, "learning_rate": 0.3},
                               early_stopping_rounds=5, seed=3, log=False, external_memory=True)
    best = stopped.model.best_iteration
    assert 0 < best < 399 and stopped.model.get_booster().num_boosted_rounds() <= best + 6
    # shards are dealt largest first to the least loaded worker
    assert deal([("a", 5), ("b", 4), ("c", 3), ("d", 2)], 2) == [["a", "d"], ["b", "c"]]


def test_external_memory_sketches_bin_edges_from_a_household_sample(pworld, world, features, client):
    """Past ``sketch_rows`` training rows the cuts come from a household sample (bounded sketch memory):
    a different but equally good model; at or under it, every row is sketched (the exact path above)."""
    exact = train_churn_dask(pworld, client, params=MODEL_PARAMS, early_stopping_rounds=None, seed=3, log=False,
                             external_memory=True)
    n_train = exact.n_rows["train"]
    same = train_churn_dask(pworld, client, params=MODEL_PARAMS, early_stopping_rounds=None, seed=3, log=False,
                            external_memory=True, sketch_rows=n_train)
    sampled = train_churn_dask(pworld, client, params=MODEL_PARAMS, early_stopping_rounds=None, seed=3, log=False,
                               external_memory=True, sketch_rows=n_train // 2)
    split = split_column(features["household_id"], 0.25, 0.2, 3)
    holdout = to_model_matrix(features)[split == 2]
    p_exact, p_same, p_sampled = (r.model.predict_proba(holdout)[:, 1] for r in (exact, same, sampled))
    np.testing.assert_array_equal(p_same, p_exact)
    # other bin edges, so other splits: the sample was used ...
    assert np.abs(p_sampled - p_exact).max() > 1e-3
    # ... and the model is as good (the edges of a 1-in-5 sample are close to the full sketch's)
    auc_exact, auc_sampled = exact.holdout_metrics["roc_auc"], sampled.holdout_metrics["roc_auc"]
    print(f"holdout AUC every row sketched={auc_exact:.4f}, half of the households={auc_sampled:.4f}; "
          f"mean |dp|={np.abs(p_sampled - p_exact).mean():.4f}")
    # Here half of ~2,000 rows places 256 edges coarsely and the holdout is ~700 rows (AUC standard
    # error ~0.02): seen 0.7323 against 0.7157, mean |dp| 0.008. The AUC at scale (500,000 of
    # millions of rows) is compared in benchmarks/RESULTS.md.
    assert auc_sampled > 0.7 and np.abs(p_sampled - p_exact).mean() < 0.02
    assert sampled.model.get_booster().num_boosted_rounds() == MODEL_PARAMS["n_estimators"]


def test_sketch_sample_keeps_the_key_share_and_every_highest_category():
    from telco_nbo.scale.extmem import SKETCH_ROWS, ShardSplits, sketch_subset, sketch_sample

    cat = pd.CategoricalDtype(["a", "b", "c"])
    frame = pd.DataFrame({"x": np.arange(6.0), "k": [0.9, 0.1, 0.8, 0.2, 0.95, 0.7],
                          "region": pd.Series(["a", "a", "c", "b", "c", "a"], dtype=cat),
                          "plan": pd.Series(["b", "a", "a", "a", "a", "b"], dtype=cat)})
    got = sketch_subset(frame, "k", 0.5, ["region", "plan"])
    # keys below 0.5 (rows 1, 3), the first row with the highest region code (2: "c"), and the
    # first with the highest plan code present (0: "b"; "c" is absent from this shard)
    assert got.index.tolist() == [0, 1, 2, 3]
    splits = ShardSplits(folder="f", files={}, n_rows={"train": 1_000, "valid": 0, "holdout": 0},
                         positives={}, cols=["x"], label="y", keys=["k", "k2"])
    assert sketch_sample(splits, 250) == ("k", 0.25)
    assert sketch_sample(splits, 1_000) is None and sketch_sample(splits, None) is None
    assert sketch_sample(ShardSplits("f", {}, {"train": 10**9}, {}, ["x"], "y", keys=[]), 10) is None
    assert sketch_sample(splits) is None and SKETCH_ROWS >= 200_000
    with pytest.raises(ConfigError, match="sketch_rows must be at least 1"):
        sketch_sample(splits, 0)


def test_external_memory_fit_fails_clearly_when_its_worker_leaves():
    """A task pinned to a worker that dies can never run: the fit says so instead of waiting for ever."""
    import time

    from telco_nbo.scale.extmem import gather_pinned

    with dask_client("local", n_workers=1) as c:
        (worker,) = c.scheduler_info(n_workers=-1)["workers"]
        future = c.submit(time.sleep, 120, workers=[worker], allow_other_workers=False, pure=False)
        import signal

        os.kill(c.run(os.getpid)[worker], signal.SIGKILL)  # the process dies; its nanny starts a new one
        t0 = time.perf_counter()
        with pytest.raises(RuntimeError, match="1 of the 1 workers of the external-memory fit left the cluster"):
            gather_pinned(c, [future], [worker], poll_s=0.5)
        assert time.perf_counter() - t0 < 60
        assert gather_pinned(c, [c.submit(sum, [1, 2], pure=False)], [], poll_s=0.5) == [3]


def test_train_cli_external_memory_tunes_logs_and_cleans_up(client, tmp_path, tracking_uri):
    """`train propensity --scheduler ... --external-memory`: tuning on a shard sample, a registered model,
    no shard left in the data folder; the flag alone (no scheduler) is refused before anything runs."""
    from typer.testing import CliRunner

    from telco_nbo.cli import app
    from telco_nbo.tracking import load_champion

    data = write_partitioned_world(generate_world_dask(900, 13, 3, client), tmp_path / "world", client)
    before = sorted(p.relative_to(data) for p in data.rglob("*"))
    runner = CliRunner()
    common = ["train", "propensity", "--data", str(data), "--tracking-uri", tracking_uri, "--trials", "2",
              "--optuna-storage", f"sqlite:///{tmp_path / 'optuna.db'}"]
    r = runner.invoke(app, [*common, "--external-memory"])
    assert r.exit_code == 2 and "add --scheduler" in " ".join(r.output.split())
    # `local`: the command's own LocalCluster, whose workers it restarts between shards and fit
    r = runner.invoke(app, [*common, "--scheduler", "local", "--external-memory"])
    assert r.exit_code == 0, r.output
    assert "external memory" in r.output
    model, info = load_champion("propensity", tracking_uri)
    assert type(model).__name__ == "XGBClassifier" and info.feature_names
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before  # shards removed
