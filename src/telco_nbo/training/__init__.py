"""Training: data preparation, the per-kind pipelines, their configuration and the pyfunc models.

Import the submodules directly (nothing heavy is imported here):

- :mod:`telco_nbo.training.config`: :class:`TrainingConfig` and :func:`load_config` (YAML files).
- :mod:`telco_nbo.training.data`: point-in-time training frames and household splits (pure).
- :mod:`telco_nbo.training.pipeline`: ``train_churn``, ``train_propensity``, ``train_uplift``,
  ``train_clv``, ``train_all``, ``promote_all``, ``demo_step``.
- :mod:`telco_nbo.training.pyfunc`: multi-part models as XGBoost JSON + JSON specs behind pyfunc.
"""
