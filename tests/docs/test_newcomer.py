"""The README, replayed as a newcomer would (issue 19): ``scripts/newcomer.sh`` end to end.

Data, training with promotion and the quality floor, ``mlflow run`` (and its failure on missing
data), readout, rank, the service with ``POST /rank`` and ``monitor`` on its decision log, then a
drifted world: every step must exit as documented and print no traceback. A few minutes on 2 cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.integration
def test_readme_commands_run_end_to_end(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELCO_NBO_", "MLFLOW_TRACKING"))}
    env["TELCO_NBO_BIN"] = str(Path(sys.executable).parent)
    res = subprocess.run(["bash", str(REPO / "scripts" / "newcomer.sh"), str(tmp_path / "work")], env=env,
                         capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert "NEWCOMER OK" in res.stdout
    assert "Traceback" not in res.stdout + res.stderr
