"""The transactional outbox: what the service tells other systems, stored with the change it
reports and delivered by the worker's sender, never in the request path.

    tracking (writes rows in the state change's transaction) -> outbox table
    worker: OutboxSender claims due rows (lease) -> Channel.deliver(payload)

Channels are plug-ins with one verb, `deliver(payload) -> dict | None`, raising TemporaryError
or PermanentError: commit statuses (trigger_service.statuses: github, gitlab, gitea) and model
registries (trigger_service.model_registry: mlflow, kubeflow).
"""
