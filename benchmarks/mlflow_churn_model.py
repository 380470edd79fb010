"""MLflow "model from code" for the serving benchmark's baseline: the churn booster behind pyfunc.

``mlflow models serve`` of the registered ``telco-churn`` (XGBoost flavor) cannot score any request:
its pyfunc hands XGBoost the categorical columns as ``object`` (MLflow has no category type), and
XGBoost refuses them. The baseline therefore serves the *same* booster through this minimal pyfunc,
which does what any user would have to add: cast the columns with ``to_model_matrix``, predict.
"""

import mlflow


class ChurnPyfunc(mlflow.pyfunc.PythonModel):
    """P(churn) of the champion booster for a frame of model features."""

    def load_context(self, context) -> None:  # noqa: ANN001 - MLflow's context object
        import xgboost as xgb

        self.model = xgb.XGBClassifier()
        self.model.load_model(context.artifacts["booster"])

    def predict(self, context, model_input, params=None):  # noqa: ANN001
        from telco_nbo.features import to_model_matrix

        return self.model.predict_proba(to_model_matrix(model_input))[:, 1]


mlflow.models.set_model(ChurnPyfunc())
