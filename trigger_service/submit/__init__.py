"""Backends behind one interface (trigger_service.submit.base): kfp_remote, local, shadow.

A regular package, not a namespace folder, so that the layer contracts (import-linter) see it.
"""
