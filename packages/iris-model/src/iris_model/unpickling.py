"""Unpickle joblib model files without letting them run code.

A pickle can call any importable callable while it loads (``os.system``, ``eval``,
``subprocess.Popen``...), and a sha256 only proves the file is the one that was saved, not
that it was harmless when saved. So the loader resolves every global a pickle names through
an allow-list: the classes a fitted scikit-learn estimator is built from, and the named
numpy/scipy reconstructors of arrays, scalars, random states and sparse matrices. Any other
global (every function that could run a program, read or write files, or import code) stops
the load before it is called, and a module off the list is never imported (importing runs
its code).

What is allowed, and why:

* **scikit-learn classes**, never its functions: estimators (``BaseEstimator`` subclasses),
  the loss and link objects of gradient boosting and linear models, and compiled extension
  types (``Tree``, ``KDTree``, distance metrics, Cython losses) plus the few plain helper
  classes fitted estimators keep (:data:`_SKLEARN_HELPERS`). Instantiating them only stores
  state. Modules that touch files or the network (``datasets``, ``utils._testing``,
  ``externals``) and test modules are excluded outright.
* **numpy and scipy**: only the named reconstructors in :data:`_ALLOWED_GLOBALS` and
  scipy's sparse matrix/array classes. Notably absent: ``numpy.memmap`` (creates files),
  ``numpy.load``, ``numpy.lib.npyio``, ``numpy.testing``, ``numpy.f2py``.
* **joblib**: its array wrapper, which is how joblib stores arrays out of band.

Setting attributes on a class (``BUILD`` on a type) is refused too: a pickle could otherwise
replace a method of an allowed class with another allowed callable.
"""

from __future__ import annotations

import importlib
import pickle
import sys
from typing import IO, Any, Final

from joblib.numpy_pickle import NumpyArrayWrapper, NumpyUnpickler
from joblib.numpy_pickle_utils import _validate_fileobject_and_memmap

_ALLOWED_GLOBALS: Final = frozenset(
    {
        ("builtins", "slice"),
        ("builtins", "complex"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "bytearray"),
        ("collections", "OrderedDict"),
        ("joblib.numpy_pickle", "NumpyArrayWrapper"),
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        # Scalar types, kept as parameters (OneHotEncoder(dtype=numpy.float64)): calling
        # one only makes a number.
        *(("numpy", name) for name in (
            "float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint64",
            "uint32", "uint16", "uint8", "bool", "bool_", "str_", "object_",
        )),
        # numpy 2 pickles name numpy._core; numpy 1.x pickles numpy.core.
        *((mod, name) for mod in ("numpy._core.multiarray", "numpy.core.multiarray")
          for name in ("_reconstruct", "scalar")),
        *((mod, "_frombuffer") for mod in ("numpy._core.numeric", "numpy.core.numeric")),
        ("numpy.random._pickle", "__randomstate_ctor"),
        ("numpy.random._pickle", "__generator_ctor"),
        ("numpy.random._pickle", "__bit_generator_ctor"),
        ("numpy.random.mtrand", "RandomState"),
        ("numpy.random._generator", "Generator"),
        ("numpy.random._mt19937", "MT19937"),
        ("numpy.random._pcg64", "PCG64"),
        ("numpy.random._pcg64", "PCG64DXSM"),
        ("numpy.random._philox", "Philox"),
        ("numpy.random._sfc64", "SFC64"),
        ("numpy.random.bit_generator", "SeedSequence"),
        ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
    }
)  # fmt: skip

# Plain (non-estimator) classes that fitted estimators hold as attributes.
_SKLEARN_HELPERS: Final = frozenset(
    {
        "sklearn.utils._bunch.Bunch",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn._loss.link.Interval",
    }
)
_SKLEARN_EXCLUDED: Final = ("sklearn.datasets", "sklearn.utils._testing", "sklearn.externals")
# Cython's pickle support: each calls ``cls.__new__(cls)`` on a class that the pickle must
# name (and so pass through this allow-list) separately.
_CYTHON_RECONSTRUCTORS: Final = ("__pyx_unpickle_", "newObj")


class ForbiddenGlobalError(pickle.UnpicklingError):
    """The pickle names a global that is not on the allow-list."""


def _may_import(module: str, name: str) -> bool:
    """Whether ``module`` may be imported at all: importing a module runs its code."""
    if (module, name) in _ALLOWED_GLOBALS:
        return True
    parts = module.split(".")
    if "tests" in parts or "conftest" in parts:
        return False
    if parts[:2] == ["scipy", "sparse"]:
        return True
    return parts[0] == "sklearn" and not module.startswith(_SKLEARN_EXCLUDED)


def _is_allowed(module: str, name: str, obj: Any) -> bool:
    if (module, name) in _ALLOWED_GLOBALS:
        return True
    if module.startswith("scipy."):
        from scipy.sparse import sparray, spmatrix  # noqa: PLC0415 - only for sparse models

        return isinstance(obj, type) and issubclass(obj, (sparray, spmatrix))
    if name.startswith(_CYTHON_RECONSTRUCTORS):
        # Only the module's own compiled helper, not something it imported under that name.
        return getattr(obj, "__module__", None) == module and type(obj).__name__ in {
            "cython_function_or_method",
            "builtin_function_or_method",
        }
    if not isinstance(obj, type):
        return False  # no scikit-learn function: some take callables, paths or code
    home = getattr(obj, "__module__", "")
    if home.partition(".")[0] != "sklearn" or home.startswith(_SKLEARN_EXCLUDED):
        return False  # re-exported from elsewhere (e.g. joblib.Memory)
    return (
        f"{home}.{obj.__qualname__}" in _SKLEARN_HELPERS
        or _is_estimator_part(obj)
        or _is_extension_type(obj)
    )


def _is_estimator_part(cls: type) -> bool:
    from sklearn._loss.link import BaseLink  # noqa: PLC0415 - keeps import of this module light
    from sklearn._loss.loss import BaseLoss  # noqa: PLC0415
    from sklearn.base import BaseEstimator  # noqa: PLC0415

    return issubclass(cls, (BaseEstimator, BaseLoss, BaseLink))


def _is_extension_type(cls: type) -> bool:
    """A class compiled in one of scikit-learn's Cython modules (Tree, KDTree, losses)."""
    module = sys.modules.get(cls.__module__)
    origin = getattr(module, "__file__", None) or ""
    return origin.endswith((".so", ".pyd"))


class AllowListUnpickler(NumpyUnpickler):  # type: ignore[misc]  # joblib is untyped
    """joblib's unpickler, resolving globals only through the allow-list."""

    dispatch = NumpyUnpickler.dispatch.copy()

    def find_class(self, module: str, name: str) -> Any:
        """Return the global ``module.name`` if it is allowed, else raise."""
        obj = None
        if _may_import(module, name):
            try:
                obj = getattr(importlib.import_module(module), name, None)
            except ImportError:
                obj = None
        if obj is None or not _is_allowed(module, name, obj):
            raise ForbiddenGlobalError(
                f"the pickle names {module}.{name}, which is not a scikit-learn, numpy or"
                " scipy class that a fitted estimator is made of"
            )
        return obj

    def load_build(self) -> None:
        """Refuse to set attributes on a class; read arrays, object arrays via the allow-list.

        joblib stores an object array (string labels, feature names) as a nested pickle;
        joblib before 1.6 read it with an unrestricted unpickler, so this one reads it itself.
        """
        if isinstance(self.stack[-2], type):
            raise ForbiddenGlobalError(
                f"the pickle sets attributes of the class {self.stack[-2]!r}"
            )
        pickle._Unpickler.load_build(self)  # type: ignore[attr-defined]  # joblib's base
        wrapper = self.stack[-1]
        if not isinstance(wrapper, NumpyArrayWrapper):
            return
        self.stack.pop()
        if getattr(wrapper.dtype, "hasobject", False):
            inner = pickle._Unpickler(self.file_handle)
            inner.find_class = self.find_class  # type: ignore[method-assign]
            self.stack.append(inner.load())
        else:
            self.stack.append(wrapper.read(self, self.ensure_native_byte_order))

    dispatch[pickle.BUILD[0]] = load_build


def restricted_load(stream: IO[bytes], filename: str) -> Any:
    """Unpickle a joblib file from an open binary stream, through the allow-list.

    Raises:
        pickle.UnpicklingError: a global or construct outside the allow-list (the message
            names it), or a file in joblib's pre-0.10 format, which this loader does not read.
    """
    with _validate_fileobject_and_memmap(stream, filename, None) as (fobj, _):
        if isinstance(fobj, str):
            raise pickle.UnpicklingError("a pre-0.10 joblib file; re-save it")
        return AllowListUnpickler(filename, fobj, ensure_native_byte_order=True).load()
