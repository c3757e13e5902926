"""Run state and lineage: event -> decision -> pipeline version -> run -> published model."""
