"""``python -m telco_nbo`` is the same as ``telco-nbo``."""

from telco_nbo.cli import main

main()
