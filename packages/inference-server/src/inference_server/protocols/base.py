"""What every protocol module implements, and the types passed between it and the dataplane.

A protocol module has a ``routes(plane)`` function returning all its routes (metadata GETs
and inference POSTs, each saying whether it needs auth) and an ``OPENAPI`` fragment next to
it. Its :class:`PredictionProtocol` turns the raw body of a prediction request (plus the few
headers that matter) into a :class:`Call`, and the model's :class:`Prediction` for that call
back into an :class:`~inference_server.http.pipeline.Answer`. Protocols raise
:class:`~inference_server.http.errors.ApiError` (or the library's errors) for bad requests
and never touch WSGI, metrics or logs: the pipeline does those once for every route.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import chain
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt

import iris_model
from inference_server.http.errors import JSON_MIMETYPE, ApiError
from inference_server.http.pipeline import Answer, Headers
from inference_server.http.strictjson import (
    Decoded,
    decode,
    json_type,
    max_depth,
    without_strings,
)

C = TypeVar("C")

#: Most JSON objects (``{``) and keys (``:``) outside strings that a request body may hold.
#: The largest body any protocol makes use of has under a dozen objects and fifty keys (an Open
#: Inference request with its parameters and both outputs); a body past these bounds is
#: refused before it is decoded, because decoding many small objects is what costs a worker
#: the most CPU per byte (each becomes a dict, and every key is checked for duplicates).
MAX_OBJECTS = 100
MAX_KEYS = 1000
#: Most JSON strings (keys included) a request body may hold, for the same reason: removing
#: strings to count what lies outside them costs the most when there are many.
MAX_STRINGS = 2 * MAX_KEYS

#: Deeper bodies, when they also hold too many arrays, are refused as nested too deeply (400,
#: as the decoder answers them) rather than as too many rows. No protocol nests deeper than 5.
MAX_DEPTH = 64

#: Longest client string a protocol echoes or keeps (the V2 ``id``, parameter strings, a model
#: version in a path), in UTF-8 bytes: a longer one is refused (400 naming the field).
MAX_STRING_BYTES = 256


@dataclass(slots=True)
class Call(Generic[C]):
    """A parsed prediction request.

    Attributes:
        rows: What the library's ``classify`` validates (a list of rows, or an array).
        probabilities: Whether the answer needs class probabilities.
        context: What the protocol needs again to render the answer (request id, outputs...).
    """

    rows: Any
    probabilities: bool
    context: C


@dataclass(slots=True)
class Prediction:
    """The model's answer for one call.

    Attributes:
        index_array: Class index of each row, as the library returns them (int64): binary
            tensors are its bytes, JSON renderers take :attr:`indices`.
        probability_matrix: ``(n_rows, n_classes)`` probabilities, or None when not asked.
        classes: The model's class labels (the columns of ``probability_matrix``).
    """

    index_array: npt.NDArray[np.int64]
    probability_matrix: npt.NDArray[np.float64] | None
    classes: tuple[str, ...]

    @classmethod
    def of(cls, model: iris_model.IrisModel, rows: Any, *, probabilities: bool) -> Prediction:
        """Validate ``rows`` once and classify them with ``model``.

        Raises:
            iris_model.InvalidInputError: Malformed rows (400).
            iris_model.BatchTooLargeError: More rows than the model's limit (413).
        """
        indices, proba = model.classify(rows, probabilities=probabilities)
        return cls(indices, proba, model.classes)

    @property
    def indices(self) -> list[int]:
        """Class index of each row (plain ``int``)."""
        values: list[int] = self.index_array.tolist()
        return values

    @property
    def labels(self) -> list[str]:
        """Class label of each row."""
        # One NumPy gather instead of a Python lookup per row.
        labels: list[str] = np.array(self.classes, dtype=object)[self.index_array].tolist()
        return labels

    @property
    def flat_probabilities(self) -> list[float]:
        """All rows' class probabilities, row-major in one list (empty when not asked)."""
        if self.probability_matrix is None:
            return []
        values: list[float] = self.probability_matrix.ravel().tolist()
        return values

    @property
    def probabilities(self) -> list[list[float]]:
        """Each row's class probabilities (empty when not asked)."""
        if self.probability_matrix is None:
            return []
        rows: list[list[float]] = self.probability_matrix.tolist()
        return rows

    def labelled_probabilities(self) -> list[dict[str, float]]:
        """Each row's probabilities keyed by class label."""
        return [dict(zip(self.classes, row, strict=True)) for row in self.probabilities]


class PredictionProtocol(abc.ABC, Generic[C]):
    """One wire protocol of prediction requests (seed, KServe V1, Open Inference V2).

    Attributes:
        media_types: Accepted request Content-Types (a missing one always means JSON).
    """

    media_types: frozenset[str] = frozenset({JSON_MIMETYPE})
    #: The model's batch limit: bounds the arrays a body may hold (set by its ``routes``).
    max_rows: int = iris_model.DEFAULT_MAX_ROWS
    #: The model's row width (set by its ``routes``); 0 leaves every row to the library.
    n_features: int = 0

    @abc.abstractmethod
    def parse(self, body: bytes, headers: Headers) -> Call[C]:
        """Turn a raw request body into a call.

        Raises:
            ApiError: The request breaks the protocol's rules (400 unless stated otherwise).
            inference_server.http.strictjson.InvalidJSONError: The body is not strict JSON.
        """

    @abc.abstractmethod
    def render(self, call: Call[C], prediction: Prediction) -> Answer:
        """Turn the model's prediction for ``call`` into the protocol's answer."""


def json_object(body: bytes, max_rows: int = iris_model.DEFAULT_MAX_ROWS) -> Decoded:
    """Decode ``body`` strictly and require a JSON object (``.value`` is a dict).

    Raises:
        InvalidJSONError: Not strict JSON.
        ApiError: 400 for any other JSON value; see :func:`check_structure` (400 or 413).
    """
    check_structure(body, max_rows)
    decoded = decode(body)
    if type(decoded.value) is not dict:
        raise ApiError(400, f"request body must be a JSON object, got {json_type(decoded.value)}")
    return decoded


def check_structure(body: bytes, max_rows: int = iris_model.DEFAULT_MAX_ROWS) -> None:
    """Refuse a body with more objects, keys, strings or arrays than any protocol accepts.

    This runs before decoding: ``bytes.count`` runs in C at memory speed, while decoding
    many small containers is what costs a worker the most CPU per byte (each becomes a dict
    or list, every key is checked). Braces, brackets and colons inside strings only
    overcount, so strings are removed (a regular expression, also in C) only when a raw count
    is over a bound, and only when there are few enough of them to remove cheaply. An
    invalid document refused here would have been refused (4xx) anyway.

    Raises:
        ApiError: 400 naming the bound that was passed, or for deep nesting; 413 for more
            arrays than a batch of ``max_rows`` rows has (more rows than that, or invalid).
    """
    max_arrays = max_rows + MAX_OBJECTS
    if (
        body.count(b"{") <= MAX_OBJECTS
        and body.count(b":") <= MAX_KEYS
        and body.count(b"[") <= max_arrays
    ):
        return
    # Quotes, less those after a backslash: never more than the strings' real delimiters.
    strings = (body.count(b'"') - body.count(b'\\"')) // 2
    if strings > MAX_STRINGS:
        raise ApiError(
            400, f"request body has {strings} JSON strings; at most {MAX_STRINGS} are accepted"
        )
    structure = without_strings(body)
    objects = structure.count(b"{")
    if objects > MAX_OBJECTS:
        raise ApiError(
            400, f"request body has {objects} JSON objects; at most {MAX_OBJECTS} are accepted"
        )
    keys = structure.count(b":")
    if keys > MAX_KEYS:
        raise ApiError(
            400, f"request body has {keys} JSON object keys; at most {MAX_KEYS} are accepted"
        )
    arrays = structure.count(b"[")
    if arrays > max_arrays:
        if max_depth(structure) > MAX_DEPTH:
            raise ApiError(400, "request body is nested too deeply")
        raise ApiError(
            413,
            f"request body has {arrays} JSON arrays; a batch of at most {max_rows} rows"
            f" needs at most {max_arrays}",
        )


def number_rows(rows: list[Any], n_features: int, body: Decoded, numbers: Any) -> Any:
    """``rows`` as a float64 matrix when the body proves they hold only numbers, else ``rows``.

    ``rows`` are rows of ``n_features`` values taken from the list ``numbers`` of the decoded
    body (``numbers`` is ``rows`` itself, or the flat list they were cut from). The library
    checks every value of a list of rows for its type, which costs about as much as decoding
    them; the body's outline answers more cheaply. When the body holds exactly the strings
    and ``true``/``false``/``null`` that the document holds outside ``numbers``, ``numbers``
    holds none of them: only numbers and arrays, which the conversion below turns into
    floats or refuses. Whatever is not converted goes to the
    library as it came, so every error keeps the library's message; the matrix still gets
    the library's checks of finiteness, range and batch size.
    """
    if n_features < 1 or not rows or type(rows[0]) is not list:  # row objects: by name
        return rows
    outline = body.outline
    if (outline.strings, outline.literals) != _strings_and_literals(body.value, numbers):
        return rows
    try:
        if set(map(len, rows)) != {n_features}:
            return rows
        flat = np.fromiter(chain.from_iterable(rows), np.float64, len(rows) * n_features)
    except (TypeError, ValueError, OverflowError):  # a number as a row, an array as a value
        return rows
    return flat.reshape(len(rows), n_features)


def _strings_and_literals(document: Any, skipped: Any) -> tuple[int, int]:
    """Strings (keys included) and true/false/null in ``document``, outside ``skipped``."""
    strings = literals = 0
    stack = [document]
    while stack:
        item = stack.pop()
        if item is skipped:
            continue
        kind = type(item)
        if kind is dict:
            strings += len(item)
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        elif kind is str:
            strings += 1
        elif item is None or kind is bool:
            literals += 1
    return strings, literals


def short_string(value: str, field: str) -> str:
    """``value``, unless longer than :data:`MAX_STRING_BYTES` in UTF-8.

    Raises:
        ApiError: 400 naming ``field`` (never quoting the value).
    """
    # At most 4 bytes a character: only a longer string needs encoding (lone surrogates,
    # which the strict decoder accepts, count as the 3 bytes they take in the text).
    if len(value) > MAX_STRING_BYTES // 4 and (
        len(value.encode("utf-8", "surrogatepass")) > MAX_STRING_BYTES
    ):
        raise ApiError(400, f"{field} is longer than {MAX_STRING_BYTES} bytes")
    return value


def refuse_unknown(document: Mapping[str, Any], allowed: frozenset[str], where: str = "") -> None:
    """Raise 400 naming the keys of ``document`` that are not in ``allowed``."""
    if document.keys() <= allowed:
        return
    unknown = ", ".join(map(repr, sorted(document.keys() - allowed)))
    raise ApiError(
        400, f"{where}: unknown field(s): {unknown}" if where else f"unknown field(s): {unknown}"
    )


def instances(document: Mapping[str, Any]) -> list[Any]:
    """The ``instances`` rows of a seed or KServe V1 body.

    Raises:
        ApiError: ``instances`` is not an array of rows (400).
    """
    rows = document.get("instances")
    if type(rows) is not list or (rows and type(rows[0]) not in (list, dict)):
        raise ApiError(
            400, "'instances' must be an array of rows (arrays of values or column objects)"
        )
    return rows
