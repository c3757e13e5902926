"""The demo: repository tooling for `make run` and `make demo`, shared with tests and benchmarks.

It is not part of the service: it ships in neither the wheel nor an image (it needs this git
checkout, moto and the pipeline's libraries), and no module of `trigger_service` or `pipeline`
imports it (an import-linter contract in pyproject.toml). Run it from the repository root:

    python -m demo run     prepare var/, start the service, print curl lines
    python -m demo loop    the whole loop with nobody at the keyboard, then stop

Modules: `workspace` (var/: data, secrets, the rules file), `s3` (moto's S3 server), `serving`
(waiting for the service), `ports`, `payloads` (webhook bodies as the senders post them, also
used by tests and benchmarks), `run` and `loop` (the two commands), `__main__` (the CLI).
"""
