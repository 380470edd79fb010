"""Model math: churn and propensity estimator builders, uplift learners, CLV and evaluation.

Submodules (import them directly; nothing heavy is imported here):

- :mod:`telco_nbo.models.metrics`: classification evaluation (AUC, PR AUC, log loss, Brier,
  calibration, lift / capture by decile) and plots.
- :mod:`telco_nbo.models.churn`: the XGBoost churn classifier and its Optuna search space.
- :mod:`telco_nbo.models.propensity`: offer-acceptance datasets and "propensity to own" targets.
- :mod:`telco_nbo.models.uplift`: T- and X-learners and Qini / AUUC / uplift-by-decile metrics.
- :mod:`telco_nbo.models.clv`: the shifted-beta-geometric retention model and per-account CLV.
"""
