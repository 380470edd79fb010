"""Thin training entry point (used by ``MLproject``): ``python training/train.py MODEL --data DIR ...``.

Same arguments as ``telco-nbo train``. Two things only MLproject needs are handled here:
an empty ``--tracking-uri`` (MLproject parameters cannot be omitted) means "the store ``mlflow run``
itself logs to" (``MLFLOW_TRACKING_URI``), and when started by ``mlflow run`` the training runs are
tagged with the project run (``telco_nbo.project_run_id``; ``mlflow.parentRunId`` when they share its
store) and the project run with their ids (``telco_nbo.trained.<experiment>``). The exit code is the
command's, so ``mlflow run`` reports a failed training as a failed run.
"""

from __future__ import annotations

import os
import sys


def _argv(argv: list[str]) -> list[str]:
    out: list[str] = []
    it = iter(range(len(argv)))
    skip = False
    for i in it:
        if skip:
            skip = False
            continue
        if argv[i] in ("--tracking-uri", "--optuna-storage", "--params", "--as-of") and i + 1 < len(argv) and argv[i + 1] == "":
            skip = True  # an empty value = not given
            continue
        if argv[i] == "--trials" and i + 1 < len(argv):
            # MLproject passes numbers as floats ("5.0").
            out += ["--trials", str(int(float(argv[i + 1])))]
            skip = True
            continue
        out.append(argv[i])
    if "--tracking-uri" not in out and os.environ.get("MLFLOW_TRACKING_URI"):
        out += ["--tracking-uri", os.environ["MLFLOW_TRACKING_URI"]]
    return out


def main(argv: list[str] | None = None) -> int:
    """Run ``telco-nbo train`` with ``argv``; return its exit code (0 only when training succeeded).

    Under ``mlflow run`` (``MLFLOW_RUN_ID`` set), the training runs are tagged with the project run
    (and made its children when they share its store), and the project run with their ids.
    """
    from telco_nbo.cli import app

    args = _argv(list(sys.argv[1:] if argv is None else argv))
    project_run = os.environ.get("MLFLOW_RUN_ID")
    if project_run:
        os.environ["TELCO_NBO_PROJECT_RUN_ID"] = project_run
    try:
        # Standalone mode: the command's exit code (2 for bad input, 3 for a bug) arrives as
        # SystemExit, usage errors are printed by Click; nothing is swallowed.
        app(args=["train", *args], prog_name="training/train.py")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    if project_run:
        _tag_project_run(project_run, args)
    return code


def _tag_project_run(project_run: str, args: list[str]) -> None:
    """Record on the ``mlflow run`` project run which training runs it produced (and where)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        return
    from mlflow import MlflowClient

    from telco_nbo.tracking import TAG_PROJECT_RUN

    training_uri = args[args.index("--tracking-uri") + 1] if "--tracking-uri" in args else uri
    project = MlflowClient(tracking_uri=uri)
    training = MlflowClient(tracking_uri=training_uri)
    found = 0
    for exp in training.search_experiments(filter_string="name LIKE 'telco-%'"):
        runs = training.search_runs([exp.experiment_id], filter_string=f"tags.`{TAG_PROJECT_RUN}` = '{project_run}'")
        if runs:
            found += len(runs)
            project.set_tag(project_run, f"telco_nbo.trained.{exp.name}", ",".join(r.info.run_id for r in runs)[:5000])
    project.set_tag(project_run, "telco_nbo.training_runs", str(found))
    if training_uri != uri:
        project.set_tag(project_run, "telco_nbo.training_store", training_uri)


if __name__ == "__main__":
    sys.exit(main())
