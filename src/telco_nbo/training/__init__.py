"""Training: data preparation, one module per model kind, their configuration and the pyfunc models.

Import the submodules directly (nothing heavy is imported here):

- :mod:`telco_nbo.training.config`: :class:`TrainingConfig` and :func:`load_config` (YAML files).
- :mod:`telco_nbo.training.data`: point-in-time training frames and household splits (pure).
- :mod:`telco_nbo.training.churn`, :mod:`~telco_nbo.training.propensity`,
  :mod:`~telco_nbo.training.uplift`, :mod:`~telco_nbo.training.clv`: each kind as pure steps
  (``prepare -> fit -> evaluate``) and a thin ``train_<kind>`` that logs them in one MLflow run
  (:func:`telco_nbo.tracking.training_run`).
- :mod:`telco_nbo.training.steps`: what the kinds share (splits, the tuned classifier fit, figures).
- :mod:`telco_nbo.training.pipeline`: ``train_all``, ``promote_all``, ``demo_step`` (and the
  ``train_<kind>`` functions).
- :mod:`telco_nbo.training.pyfunc`: multi-part models as XGBoost JSON + JSON specs behind pyfunc.
"""
