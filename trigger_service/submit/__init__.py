"""Backends behind one interface (trigger_service.submit.base): kfp_remote, local, shadow.

A package (not a namespace folder) so that setuptools ships it in the wheel and the image.
"""
