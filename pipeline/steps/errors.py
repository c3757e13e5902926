"""Why a step stops the run. Each gate raises one of these; the message names the problem.

StepFailed
 +-- DataValidationError   the data is not fit to train on (validate)
 +-- QualityGateError      the model is below the accuracy threshold (evaluate)
 +-- ParityError           the ONNX model does not answer like the Keras model (verify)
 +-- PublishError          the model root is not in a state we can publish into (publish)
"""


class StepFailed(Exception):
    """A step decided the run must stop."""


class DataValidationError(StepFailed):
    pass


class QualityGateError(StepFailed):
    pass


class ParityError(StepFailed):
    pass


class PublishError(StepFailed):
    pass
