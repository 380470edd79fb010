"""Shared by the serving tests, benchmark and notebook: a small world with trained champions, a live server.

``trained_store(root)`` generates a small synthetic world and trains the four models with tiny
budgets through the real training pipeline (real MLflow SQLite registry); ``Server`` starts the
real BentoML service in a subprocess on a free loopback port and waits for ``/readyz``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

TINY = {"n_estimators": 25, "max_depth": 3}


def trained_store(root: Path, households: int = 1200, seed: int = 5) -> dict:
    """Generate a world in ``root/data`` and train the champions into ``root/mlflow.db``."""
    from telco_nbo.data.io import write_world
    from telco_nbo.data.synthetic import generate_world
    from telco_nbo.training.config import load_config
    from telco_nbo.vocabulary import MODEL_KINDS as KINDS
    from telco_nbo.training.pipeline import train_all

    data = root / "data"
    write_world(generate_world(households, seed=seed), data, overwrite=True)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    storage = f"sqlite:///{root / 'optuna.db'}"
    configs = {k: load_config(k, trials=0, params=TINY, seed=seed, tracking_uri=uri, optuna_storage=storage, shap_rows=50)
               for k in KINDS}
    results = train_all(data, configs)
    return {"root": root, "data": data, "uri": uri, "results": results}


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """The real service in a subprocess (``telco-nbo serve``)."""

    def __init__(self, args: list[str], env: dict[str, str], port: int, log: Path, cwd: Path | None = None):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self._fh = log.open("w")
        self.proc = subprocess.Popen(args, env={**os.environ, **env}, stdout=self._fh, stderr=subprocess.STDOUT,
                                     start_new_session=True, cwd=cwd)
        self.ready_statuses: list[int] = []

    @classmethod
    def cli(cls, store: dict, tmp: Path, *, api_key: str | None = "test-key", extra: list[str] | None = None,
            env: dict[str, str] | None = None, cwd: Path | None = None) -> Server:
        """``telco-nbo serve --data ... --tracking-uri ...`` on a free port (``env`` added, run in ``cwd``)."""
        port = free_port()
        extra_env = env
        env = {"BENTOML_DO_NOT_TRACK": "True", "TELCO_NBO_PREDICTION_LOG": str(tmp / "decisions.jsonl")}
        args = [sys.executable, "-m", "telco_nbo", "serve", "--data", str(store["data"]), "--tracking-uri", store["uri"],
                "--port", str(port), "--state-dir", str(tmp / f"bentoml-{port}")]
        if api_key:
            env["NBO_TEST_API_KEY"] = api_key
            args += ["--api-key-env", "NBO_TEST_API_KEY"]
        return cls(args + (extra or []), {**env, **(extra_env or {})}, port, tmp / f"server-{port}.log", cwd=cwd)

    def wait_ready(self, timeout: float = 120.0, want: int = 200) -> None:
        """Poll ``/readyz`` until it answers ``want``; record every status seen."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited ({self.proc.returncode}):\n{self.log.read_text()[-3000:]}")
            try:
                code = httpx.get(self.url + "/readyz", timeout=2).status_code
                self.ready_statuses.append(code)
                if code == want:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"/readyz never answered {want}:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        """Terminate the server's process group."""
        import signal

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self._fh.close()
