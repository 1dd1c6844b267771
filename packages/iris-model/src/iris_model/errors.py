"""Domain errors of the library.

Each error says what a caller, such as an HTTP server, should make of it. The server maps
them to HTTP statuses in one place; the library never imports a web framework.
"""

from __future__ import annotations


class IrisModelError(Exception):
    """Base class of every error this library raises on purpose."""


class InvalidInputError(IrisModelError, ValueError):
    """The rows given for prediction are malformed.

    HTTP servers should answer 400: the client sent something the model cannot score. The
    message names the offending row and column where there is one.
    """


class BatchTooLargeError(InvalidInputError):
    """The batch holds more rows than the configured limit.

    HTTP servers should answer 413: the request is well-formed but too large.
    """


class TrainingError(IrisModelError, ValueError):
    """The data, estimator or settings given to ``train()`` cannot make a model.

    Not a serving error: the CLI reports it on one line and exits 1.
    """


class ModelSaveError(IrisModelError):
    """``save()`` refused a model that would not load back (the message says why).

    Not a serving error: nothing was written, and the CLI exits 1.
    """


class ModelVersionWarning(UserWarning):
    """A model saved with another scikit-learn version was loaded because it was allowed.

    Its golden pairs still decide whether it is served.
    """


class ModelLoadError(IrisModelError):
    """A saved model cannot be loaded, or fails its self-test.

    Servers should refuse to start (or report not-ready, 503) rather than serve it.
    """


class ModelIntegrityError(ModelLoadError):
    """The model file does not match the sha256 recorded in its manifest.

    Raised before anything is unpickled: the file may be corrupt or tampered with.
    """
