#!/usr/bin/env bash
# Contract fuzzing: schemathesis against the real service on a loopback port, bounded in examples
# and time; exits non-zero on any failure (a 5xx, an answer that breaks the OpenAPI document, a
# schema-valid request refused or an invalid one accepted).
#
# Schemathesis runs from its own venv (.venv-fuzz), installed from the pinned .ci/schemathesis.txt
# with --no-deps (its pins would fight the project's). The service runs from the project's venv on
# a small generated world with champions trained by the real pipeline, all in a temporary folder.
#
# Knobs: FUZZ_EXAMPLES (25 per operation and phase), FUZZ_SECONDS (240), FUZZ_SEED (1).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PY:-$ROOT/.venv/bin/python}
FUZZ_VENV=${FUZZ_VENV:-$ROOT/.venv-fuzz}
WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ ! -x "$FUZZ_VENV/bin/st" ] || ! cmp -s .ci/schemathesis.txt "$FUZZ_VENV/.pins"; then
  rm -rf "$FUZZ_VENV"
  "$PY" -m venv "$FUZZ_VENV"
  "$FUZZ_VENV/bin/python" -m pip install --quiet --no-deps -r .ci/schemathesis.txt
  cp .ci/schemathesis.txt "$FUZZ_VENV/.pins"
fi

# The quality floor is off for this small world: the fuzz tests the contract, not the models.
echo "contract fuzz: building a small world and its champions in $WORK"
TELCO_NBO_QUALITY_FLOOR=false PYTHONPATH="$ROOT/tests${PYTHONPATH:+:$PYTHONPATH}" "$PY" - "$WORK" <<'PYEOF'
import sys
from pathlib import Path

from serving_support import trained_store

trained_store(Path(sys.argv[1]))
PYEOF
PORT=$(PYTHONPATH="$ROOT/tests${PYTHONPATH:+:$PYTHONPATH}" "$PY" -c 'from serving_support import free_port; print(free_port())')
export NBO_FUZZ_KEY="fuzz-$RANDOM$RANDOM"
(cd "$WORK" && exec "$PY" -m telco_nbo serve --data "$WORK/data" --tracking-uri "sqlite:///$WORK/mlflow.db" \
  --port "$PORT" --api-key-env NBO_FUZZ_KEY --prediction-log "$WORK/decisions.jsonl" --state-dir "$WORK/bentoml" \
  >"$WORK/server.log" 2>&1) &
SERVER_PID=$!
for _ in $(seq 1 300); do
  if "$PY" -c "import httpx, sys; sys.exit(httpx.get('http://127.0.0.1:$PORT/readyz', timeout=2).status_code != 200)" 2>/dev/null; then
    break
  fi
  kill -0 "$SERVER_PID" 2>/dev/null || { tail -40 "$WORK/server.log"; exit 1; }
  sleep 1
done

status=0
(cd "$WORK" && "$FUZZ_VENV/bin/st" run "http://127.0.0.1:$PORT/docs.json" -H "X-API-Key: $NBO_FUZZ_KEY" \
  --checks all --max-examples "${FUZZ_EXAMPLES:-25}" --seed "${FUZZ_SEED:-1}" --max-time "${FUZZ_SECONDS:-240}" \
  --request-timeout 30 --generation-database none --report-dir "$WORK/report" --warnings off) || status=$?
if grep -q "Traceback" "$WORK/server.log"; then
  echo "contract fuzz: the server logged a traceback:"; grep -B2 -A20 "Traceback" "$WORK/server.log" | head -60
  status=1
fi
exit $status
