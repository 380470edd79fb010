"""``telco-nbo rank``: batch next-best-offer ranking of a data folder into one Parquet file."""

from __future__ import annotations

from pathlib import Path

import typer

from telco_nbo.cli._common import out, steps, user_errors
from telco_nbo.vocabulary import registered_names

# Models the ranking needs, in the order they are checked.


def champion_versions(tracking_uri: str | None) -> dict[str, str]:
    """Return ``{model: version}`` of the ``@champion`` of every model the ranking needs.

    Args:
        tracking_uri: MLflow tracking URI (``None``: the default store).

    Raises:
        ConfigError: A model has no champion (names the first one missing).
    """
    from mlflow.exceptions import MlflowException

    from telco_nbo.errors import ConfigError
    from telco_nbo.tracking import CHAMPION, tracking_session

    versions: dict[str, str] = {}
    with tracking_session(tracking_uri) as client:
        for name in registered_names():
            try:
                versions[name] = str(client.get_model_version_by_alias(name, CHAMPION).version)
            except MlflowException:
                # A version refused by the promotion gate says why, instead of "train first".
                from telco_nbo.tracking import no_champion_reason

                why = no_champion_reason(client, name)
                raise ConfigError(
                    (f"no champion for {name}: {why}" if why else f"no champion model registered for {name}; run telco-nbo train first")
                    + f" (tracking store: {client._tracking_client.tracking_uri})"
                ) from None
    return versions


def load_timing_rule(path: Path):  # noqa: ANN201 - TimingRule, imported lazily
    """Read the timing rule a readout wrote (``timing_rule.json``).

    Raises:
        ConfigError: Missing file or not a timing rule (names the file and the problem).
    """
    from pydantic import ValidationError

    from telco_nbo.errors import ConfigError
    from telco_nbo.experiments.timing_rule import TimingRule

    try:
        return TimingRule.model_validate_json(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read timing rule {path}: {exc}") from None
    except ValidationError as exc:
        raise ConfigError(f"{path} is not a timing rule written by `telco-nbo readout`:\n{exc}") from None


def register(app: typer.Typer) -> None:
    """Add the ``rank`` command to ``app``."""

    @app.command()
    def rank(
        data: Path = typer.Option(..., "--data", help="Data folder (Parquet/CSV tables)."),
        out_file: Path = typer.Option(..., "--out", help="Output Parquet file (one row per account x offer)."),
        top_k: int = typer.Option(3, "--top-k", min=1, help="Offers per account at most."),
        as_of: str | None = typer.Option(None, "--as-of", help="Feature date (default: the folder's as_of)."),
        tracking_uri: str | None = typer.Option(None, "--tracking-uri", help="MLflow tracking URI."),
        catalog_path: Path | None = typer.Option(None, "--catalog", help="Offer catalog YAML (default built-in)."),
        config_path: Path | None = typer.Option(None, "--config", help="NBO policy YAML (default built-in)."),
        scheduler: str | None = typer.Option(
            None, "--scheduler", help="Dask scheduler address or 'local': score and rank partition by partition on the workers."
        ),
        timing_rule_path: Path | None = typer.Option(
            None, "--timing-rule", help="timing_rule.json written by `telco-nbo readout`: offer timing per segment."
        ),
    ) -> None:
        """Rank the next best offers of every active account, with the audit trail, into Parquet."""
        with user_errors():
            from telco_nbo.errors import ConfigError
            from telco_nbo.nbo.catalog import load_catalog
            from telco_nbo.nbo.config import load_nbo_config

            if out_file.suffix != ".parquet":
                raise ConfigError(f"--out must be a .parquet file, got {out_file}")
            if not data.is_dir():
                raise ConfigError(f"data folder {data} does not exist")
            catalog = load_catalog(catalog_path)
            config = load_nbo_config(config_path)
            timing_rule = load_timing_rule(timing_rule_path) if timing_rule_path is not None else None
            # Scores come from the registered champions only: never invented here.
            versions = champion_versions(tracking_uri)
            if scheduler is not None:
                from telco_nbo.scale.cli import rank_on_dask

                rank_on_dask(data, out_file, tracking_uri, catalog, config, top_k, as_of, scheduler, timing_rule)
                return
            from telco_nbo.data.io import load_world
            from telco_nbo.features import build_account_features
            from telco_nbo.nbo.rank import rank_batch

            with steps(6, "loading the champion models") as step:
                step("loading the champion models")
                provider = champion_score_provider(versions, tracking_uri)
                step(f"loading and validating {data}")
                world = load_world(data)
                when_ts = world.as_of_date(as_of)
                step("building features")
                features = build_account_features(world.tables, when_ts)
                step("scoring")
                scores = provider.score(features, catalog)
                step("ranking offers")
                frame = rank_batch(features, scores, catalog, config, top_k, as_of=when_ts, timing_rule=timing_rule)
                step(f"writing {out_file}")
                out_file.parent.mkdir(parents=True, exist_ok=True)
                tmp = out_file.with_name(f".{out_file.name}.tmp")
                frame.to_parquet(tmp, index=False)
                tmp.replace(out_file)  # atomic: a reader never sees half a file
            from telco_nbo.nbo.summary import summarize_ranking

            out.print(f"ranked {frame['account_id'].nunique():,} accounts: {int(frame['selected'].sum()):,} offers, "
                      f"{int((~frame['selected']).sum()):,} suppressed -> {out_file}")
            summary = summarize_ranking(frame, [o.offer_id for o in catalog.offers])
            out.print(f"{summary.accounts_without_offer:,} accounts ({summary.share_without_offer:.0%}) got no offer.",
                      highlight=False)
            for line in summary.lines()[1:]:
                out.print(line, highlight=False, soft_wrap=True)
            if frame.attrs.get("capacity"):
                import json

                cap_file = out_file.with_name(out_file.stem + ".capacity.json")
                cap_file.write_text(json.dumps(frame.attrs["capacity"], indent=2))
                out.print(f"capacity report -> {cap_file}", highlight=False)


def champion_score_provider(versions: dict[str, str], tracking_uri: str | None):
    """Return the score provider backed by the champion models (loaded once).

    Args:
        versions: ``{model: version}`` of the champions (checked by :func:`champion_versions`).
        tracking_uri: MLflow tracking URI.

    Raises:
        ConfigError: A champion disappeared since ``versions`` was read, or lacks its artifacts.
    """
    from telco_nbo.scoring import ChampionScoreProvider

    return ChampionScoreProvider(tracking_uri=tracking_uri)
