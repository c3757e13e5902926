"""The worker: claim events, decide, apply the policy, submit, and follow runs."""
