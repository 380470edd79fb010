"""Tables of the telco world: contracts (schema), loaders, the synthetic world and importers."""
