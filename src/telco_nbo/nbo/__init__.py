"""Next-best-offer decisioning: the offer catalog, eligibility and guardrail rules, ranking."""
