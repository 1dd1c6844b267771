"""The allow-list unpickler: estimators users bring load; pickles that would run code do not."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.ensemble import (
    AdaBoostClassifier,
    BaggingClassifier,
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    StackingClassifier,
    VotingClassifier,
)
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from iris_model.dataset import load_dataset
from iris_model.unpickling import ForbiddenGlobalError, restricted_load

ESTIMATORS: dict[str, Callable[[], Any]] = {
    "random-forest": lambda: RandomForestClassifier(n_estimators=5, random_state=0),
    "random-forest-randomstate": lambda: RandomForestClassifier(
        n_estimators=3, random_state=np.random.RandomState(0)
    ),
    "scaler-logreg": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
    "gradient-boosting": lambda: GradientBoostingClassifier(n_estimators=5, random_state=0),
    "svc-probability": lambda: SVC(probability=True, random_state=0),
    "hist-gradient-boosting": lambda: HistGradientBoostingClassifier(max_iter=5, random_state=0),
    "extra-trees": lambda: ExtraTreesClassifier(n_estimators=3, random_state=0),
    "knn": KNeighborsClassifier,
    "gaussian-nb": GaussianNB,
    "mlp": lambda: MLPClassifier(hidden_layer_sizes=(5,), max_iter=20, random_state=0),
    "sgd-log-loss": lambda: SGDClassifier(loss="log_loss", random_state=0),
    "calibrated": lambda: CalibratedClassifierCV(SVC(), cv=3),
    "voting": lambda: VotingClassifier(
        [("lr", LogisticRegression(max_iter=500)), ("nb", GaussianNB())], voting="soft"
    ),
    "stacking": lambda: StackingClassifier(
        [("lr", LogisticRegression(max_iter=500)), ("t", DecisionTreeClassifier())], cv=3
    ),
    "adaboost": lambda: AdaBoostClassifier(n_estimators=3, random_state=0),
    "bagging": lambda: BaggingClassifier(n_estimators=3, random_state=0),
    "columns-pca": lambda: Pipeline(
        [
            (
                "columns",
                ColumnTransformer([("s", StandardScaler(), [0, 1]), ("m", MinMaxScaler(), [2, 3])]),
            ),
            ("pca", PCA(3)),
            ("lr", LogisticRegression(max_iter=500)),
        ]
    ),
}


def fit(make: Callable[[], Any], labels: Any = None) -> Any:
    """Fit on iris; convergence and deprecation warnings are not what these tests are about."""
    features, target = load_dataset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make().fit(features, target if labels is None else labels[target])


def round_trip(obj: Any, tmp_path: Path, **dump_args: Any) -> Any:
    path = tmp_path / "model.joblib"
    joblib.dump(obj, path, **dump_args)
    with path.open("rb") as stream:
        return restricted_load(stream, str(path))


def dumped(payload: Any) -> io.BytesIO:
    return io.BytesIO(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))


class Reduce:
    """Pickles as a call of ``func(*args)``: what a malicious model file contains."""

    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.func, self.args)


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_estimators_users_bring_load_and_agree(name: str, tmp_path: Path) -> None:
    """Every representative fitted estimator loads and predicts exactly as before saving."""
    estimator = fit(ESTIMATORS[name])
    loaded = round_trip(estimator, tmp_path)
    features, _ = load_dataset()
    assert type(loaded) is type(estimator)
    assert np.array_equal(loaded.predict_proba(features), estimator.predict_proba(features))


def test_string_labels_and_feature_names_load(tmp_path: Path) -> None:
    """Object arrays (string classes, DataFrame column names) load through the allow-list."""
    labels = np.array(["setosa", "versicolor", "virginica"], dtype=object)
    estimator = fit(lambda: RandomForestClassifier(n_estimators=3, random_state=0), labels)
    estimator.feature_names_in_ = np.array(["a", "b", "c", "d"], dtype=object)
    loaded = round_trip(estimator, tmp_path)
    assert loaded.classes_.tolist() == ["setosa", "versicolor", "virginica"]
    assert loaded.feature_names_in_.tolist() == ["a", "b", "c", "d"]


def test_compressed_files_load(tmp_path: Path) -> None:
    """Compressed joblib files are unpickled through the same allow-list."""
    estimator = fit(ESTIMATORS["scaler-logreg"])
    assert type(round_trip(estimator, tmp_path, compress=3)) is Pipeline


def test_a_pickle_that_would_run_a_command_never_runs_it(tmp_path: Path) -> None:
    """``os.system('touch ...')`` in a joblib file is refused, and the file is never created."""
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.joblib"
    joblib.dump({"model": Reduce(os.system, f"touch {marker}")}, path)
    with path.open("rb") as stream, pytest.raises(ForbiddenGlobalError, match="system"):
        restricted_load(stream, str(path))
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload",
    [
        Reduce(subprocess.Popen, ["true"]),
        Reduce(eval, "1"),
        Reduce(exec, "1"),
        Reduce(getattr, StandardScaler, "fit"),
        Reduce(__import__, "os"),
        Reduce(np.memmap, "x", np.uint8, "w+", 0, (1,)),
        Reduce(np.load, "x.npy"),
        Reduce(FunctionTransformer, os.system),  # an allowed class holding a forbidden one
        Reduce(np.frompyfunc, print, 1, 1),
        Reduce(joblib.load, "x"),
        Reduce(joblib.Memory, "x"),
    ],
    ids=lambda p: f"{getattr(p.func, '__module__', '')}.{p.func.__name__}",
)
def test_callables_that_could_run_programs_are_refused(payload: Reduce) -> None:
    """Functions and non-estimator classes outside the allow-list are refused by name."""
    with pytest.raises(ForbiddenGlobalError):
        load_bytes(dumped(payload))


def load_bytes(stream: io.BytesIO) -> Any:
    return restricted_load(stream, "test.pkl")


def test_the_command_in_an_object_array_never_runs(tmp_path: Path) -> None:
    """A payload hidden in an object array (joblib's nested pickle) is refused too."""
    marker = tmp_path / "pwned"
    array = np.empty(2, dtype=object)
    array[0] = Reduce(os.system, f"touch {marker}")
    path = tmp_path / "evil.joblib"
    joblib.dump(array, path)
    with path.open("rb") as stream, pytest.raises(ForbiddenGlobalError, match="system"):
        restricted_load(stream, str(path))
    assert not marker.exists()


def test_a_module_off_the_list_is_never_imported(tmp_path: Path) -> None:
    """Naming a module imports it (runs its code): unlisted modules are refused unimported."""
    marker = tmp_path / "imported"
    (tmp_path / "iris_test_sideeffect.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nclass X: pass\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        stream = io.BytesIO(b"\x80\x04\x8c\x14iris_test_sideeffect\x94\x8c\x01X\x94\x93\x94.")
        with pytest.raises(ForbiddenGlobalError, match=r"iris_test_sideeffect\.X"):
            load_bytes(stream)
    finally:
        sys.path.remove(str(tmp_path))
    assert not marker.exists()
    assert "iris_test_sideeffect" not in sys.modules


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("sklearn.utils._testing", "TempMemmap"),
        ("sklearn.datasets", "fetch_openml"),
        ("sklearn.utils", "Bunch.__init__"),
        ("sklearn.model_selection", "cross_val_score"),
        ("sklearn.utils.parallel", "delayed"),
        ("sklearn.utils.fixes", "parse_version"),
        ("numpy", "memmap"),
        ("numpy.lib.npyio", "NpzFile"),
        ("scipy.sparse", "load_npz"),
        ("scipy.io", "loadmat"),
        ("builtins", "getattr"),
        ("copyreg", "_reconstructor"),
    ],
)
def test_unlisted_globals_are_refused(module: str, name: str) -> None:
    """Module functions, I/O classes and helpers outside the list fail by name."""
    stream = io.BytesIO(pickle.dumps(None)[:2] + f"c{module}\n{name}\n.".encode())
    with pytest.raises(ForbiddenGlobalError, match=name.split(".", maxsplit=1)[0]):
        load_bytes(stream)


def test_setting_attributes_of_a_class_is_refused() -> None:
    """BUILD on an allowed class could swap its methods: refused."""
    # GLOBAL StandardScaler; {"transform": None}; BUILD; STOP
    stream = io.BytesIO(
        b"\x80\x02csklearn.preprocessing._data\nStandardScaler\n}X\t\x00\x00\x00transformNsb."
    )
    with pytest.raises(ForbiddenGlobalError, match="sets attributes of the class"):
        load_bytes(stream)


def test_sparse_coefficients_load(tmp_path: Path) -> None:
    """A sparsified linear model (scipy.sparse coef_) is allowed."""
    estimator = fit(lambda: SGDClassifier(loss="log_loss", random_state=0)).sparsify()
    loaded = round_trip(estimator, tmp_path)
    assert loaded.coef_.nnz == estimator.coef_.nnz
