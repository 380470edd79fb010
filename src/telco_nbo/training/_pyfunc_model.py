"""MLflow "model from code" for the multi-part models (see :mod:`telco_nbo.training.pyfunc`).

MLflow executes this file when it loads the model; it is never imported by the package itself
(registering the model with ``set_model`` is the side effect MLflow expects from this file).
"""

from __future__ import annotations

import mlflow
import pandas as pd

from telco_nbo.training.pyfunc import load_scorer


class TelcoComponentModel(mlflow.pyfunc.PythonModel):
    """Reads its component files at load time; predicts with the rebuilt scorer."""

    def load_context(self, context) -> None:  # noqa: ANN001 - MLflow's context object
        self.scorer = load_scorer(context.artifacts)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:  # noqa: ANN001
        return self.scorer.predict_frame(model_input)


mlflow.models.set_model(TelcoComponentModel())
