"""Make the model server load a model version a run has just published.

Where it sits: tracking sees a run publish <models-root>/<model>/<version>/ -> modelserver.

    make_rollout(settings) -> Rollout
    Rollout.rollout(model_name, version) -> str   what was done, for the run's record

- none / poll: nothing to do. OVMS and Triton poll their model folder and serve the highest
  version, so publishing the folder is the roll-out.
- kserve: merge-patch the InferenceService's predictor annotations; the pod template changes,
  so KServe rolls out a new revision that loads the new version (OpenShift AI's stock OVMS
  runtime has folder polling off).

Errors follow trigger_service.errors: TemporaryError (retry) or PermanentError, chained.
"""

from trigger_service.modelserver.kserve import KServeRollout
from trigger_service.modelserver.rollout import NoRollout, Rollout, make_rollout

__all__ = ["KServeRollout", "NoRollout", "Rollout", "make_rollout"]
