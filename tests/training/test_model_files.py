"""A registered model is loaded only if it holds data and this package's own loader code.

Unit tests on hand-made model folders (each way a model can carry code), then the real thing: a
trained registry whose uplift champion's code file was altered in the artifact store is refused by
every loader, the altered code never runs, and the untouched models still load.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from telco_nbo.errors import ConfigError
from telco_nbo.model_files import CODE_FILE, check_model_files, model_file_problems, own_code_digest, sha256_file

OWN_CODE = Path(__file__).resolve().parents[2] / "src" / "telco_nbo" / "training" / CODE_FILE


def _code_model(folder: Path, code: str | None = None, **pyfunc: object) -> Path:
    folder.mkdir(parents=True)
    (folder / "artifacts").mkdir()
    (folder / "artifacts" / "spec.json").write_text("{}")
    if code is None:
        shutil.copy(OWN_CODE, folder / CODE_FILE)
    else:
        (folder / CODE_FILE).write_text(code)
    flavor = {"loader_module": "mlflow.pyfunc.loaders.code_model", "code": None,
              "model_code_path": f"/somewhere/else/{CODE_FILE}", **pyfunc}
    (folder / "MLmodel").write_text(yaml.safe_dump({"flavors": {"python_function": flavor}}))
    return folder


def _xgb_model(folder: Path, **xgb: object) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.ubj").write_bytes(b"\x00")
    flavor = {"model_class": "xgboost.sklearn.XGBClassifier", "model_format": "ubj", "code": None, **xgb}
    (folder / "MLmodel").write_text(yaml.safe_dump({"flavors": {
        "xgboost": flavor, "python_function": {"loader_module": "mlflow.xgboost", "data": "model.ubj"}}}))
    return folder


def test_the_package_own_models_pass(tmp_path: Path) -> None:
    assert model_file_problems(_code_model(tmp_path / "code")) == []
    assert model_file_problems(_xgb_model(tmp_path / "xgb")) == []
    assert own_code_digest() == sha256_file(OWN_CODE)


def test_each_way_to_carry_code_is_named(tmp_path: Path) -> None:
    altered = _code_model(tmp_path / "altered", code=OWN_CODE.read_text() + "\nimport os\n")
    assert any("not on the allow-list" in p for p in model_file_problems(altered))

    pickled = _code_model(tmp_path / "pickled", loader_module="mlflow.pyfunc.model")
    assert any("pickled python model is never loaded" in p for p in model_file_problems(pickled))

    with_paths = _code_model(tmp_path / "paths", code_paths=None, code="x = 1\n")
    (with_paths / "MLmodel").write_text(yaml.safe_dump({"flavors": {"python_function": {
        "loader_module": "mlflow.pyfunc.loaders.code_model", "code": "code", "model_code_path": CODE_FILE}}}))
    assert any("adds code paths" in p for p in model_file_problems(with_paths))

    extra = _code_model(tmp_path / "extra")
    (extra / "artifacts" / "helper.py").write_text("print('hi')\n")
    (extra / "artifacts" / "state.pkl").write_bytes(b"\x80\x04")
    problems = model_file_problems(extra)
    assert "file artifacts/helper.py may carry code" in problems
    assert "file artifacts/state.pkl may carry code" in problems

    evil_class = _xgb_model(tmp_path / "class", model_class="os.system")
    assert any("'os.system'" in p for p in model_file_problems(evil_class))
    pickled_xgb = _xgb_model(tmp_path / "fmt", model_format="pkl")
    assert any("not json or ubj" in p for p in model_file_problems(pickled_xgb))

    assert model_file_problems(tmp_path / "nothing") == ["no readable MLmodel file (FileNotFoundError)"]


def test_refusal_names_the_model_and_the_ways_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    altered = _code_model(tmp_path / "altered", code="import os\n")
    with pytest.raises(ConfigError) as err:
        check_model_files(altered, "models:/telco-uplift@champion")
    text = str(err.value)
    assert "refusing to load models:/telco-uplift@champion" in text
    assert "TELCO_NBO_TRUSTED_MODEL_CODE" in text and "TELCO_NBO_TRUST_REGISTRY_CODE" in text

    # A reviewed file's digest on the allow-list lets it load; so does trusting the registry.
    monkeypatch.setenv("TELCO_NBO_TRUSTED_MODEL_CODE", f" deadbeef , {sha256_file(altered / CODE_FILE)}")
    assert check_model_files(altered, "x") == altered
    monkeypatch.delenv("TELCO_NBO_TRUSTED_MODEL_CODE")
    monkeypatch.setenv("TELCO_NBO_TRUST_REGISTRY_CODE", "true")
    assert check_model_files(altered, "x") == altered


@pytest.mark.slow
@pytest.mark.integration
def test_an_altered_champion_in_the_artifact_store_is_refused_and_never_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow import MlflowClient
    from serving_support import trained_store

    from telco_nbo.scoring import ChampionModels, export_champions
    from telco_nbo.tracking import CHAMPION, load_champion

    store = trained_store(tmp_path / "store", households=900, seed=17)
    uri = store["uri"]
    monkeypatch.chdir(tmp_path)
    assert ChampionModels.load(uri).versions  # untouched: loads

    exported = tmp_path / "export"
    export_champions(uri, exported)
    assert ChampionModels.load_dir(exported).versions

    # Someone with write access to the artifact store edits the stored loader.
    client = MlflowClient(tracking_uri=uri)
    mv = client.get_model_version_by_alias("telco-uplift", CHAMPION)
    local = Path(client.get_model_version_download_uri("telco-uplift", mv.version).removeprefix("file://"))
    marker = tmp_path / "pwned"
    payload = f"\nfrom pathlib import Path as _P\n_P({str(marker)!r}).write_text('ran')\n"
    with open(local / CODE_FILE, "a") as f:
        f.write(payload)
    with open(exported / "telco-uplift" / CODE_FILE, "a") as f:
        f.write(payload)

    with pytest.raises(ConfigError, match=r"refusing to load models:/telco-uplift@champion: .*not on the allow-list"):
        ChampionModels.load(uri)
    with pytest.raises(ConfigError, match="refusing to load .*telco-uplift"):
        ChampionModels.load_dir(exported)
    assert not marker.exists(), "the altered loader ran"
    model, info = load_champion("churn", uri)  # the XGBoost champions are untouched
    assert info.name == "telco-churn" and model.get_booster().num_boosted_rounds() > 0

    # The payload is real: with the checks turned off, loading runs it.
    monkeypatch.setenv("TELCO_NBO_TRUST_REGISTRY_CODE", "true")
    ChampionModels.load(uri)
    assert marker.read_text() == "ran"
