"""Plain, typed business logic of each pipeline step; no KFP import here, so it tests without it."""
