"""Event-driven GitOps controller for Kubeflow Pipelines.

Flow, one direction only (each stage a package):
    sources (verify + parse) -> inbox (durable) -> worker: rules (decide) -> policy
    -> submit (backend) -> tracking (runs, lineage)
"""
