"""INFERENCE_AUTH_TOKENS_FILE is re-read when it changes: a rotated Secret needs no restart."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from inference_server.http import auth
from inference_server.http.auth import BearerAuth, TokenFile
from inference_server.http.errors import ApiError
from inference_server.settings import file_tokens

from .conftest import SETOSA, SecretVolume


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        """The time the test set."""
        return self.now


def _watch(volume: SecretVolume, clock: Clock) -> TokenFile:
    return TokenFile(
        volume.path,
        file_tokens(volume.path),
        signature=auth._signature(volume.path),
        interval=1.0,
        clock=clock,
    )


def test_a_swapped_secret_is_read_after_the_interval(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """New tokens are used once a second has passed; the reload is logged once, no token."""
    volume = SecretVolume(tmp_path)
    volume.write("old-token\n")
    clock = Clock()
    watched = _watch(volume, clock)
    volume.write("new-token\nsecond-new\n")
    assert watched.current() == (b"old-token",)  # within the interval: no stat at all
    clock.now += 1.0
    with caplog.at_level(logging.INFO, logger="inference_server"):
        assert watched.current() == (b"new-token", b"second-new")
        clock.now += 5.0
        assert watched.current() == (b"new-token", b"second-new")  # unchanged: not re-read
    reloads = [r.getMessage() for r in caplog.records if "reloaded" in r.getMessage()]
    assert reloads == [f"auth tokens reloaded from {volume.path}: 2 token(s) in the file"]
    assert "new-token" not in caplog.text


def test_stats_at_most_once_per_interval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Many requests within a second cost one stat, and no read while the file is unchanged."""
    volume = SecretVolume(tmp_path)
    volume.write("token\n")
    clock = Clock()
    watched = _watch(volume, clock)
    stats: list[Path] = []
    real = auth._signature
    monkeypatch.setattr(auth, "_signature", lambda path: stats.append(path) or real(path))
    monkeypatch.setattr(Path, "read_text", lambda *_a, **_k: pytest.fail("read unchanged file"))
    for step in range(1, 101):
        clock.now += 0.25  # 100 requests over 25 s (a quarter is exact in binary)
        watched.current()
        assert len(stats) == step // 4


@pytest.mark.parametrize("broken", ["empty", "unreadable", "removed"])
def test_a_file_without_tokens_fails_closed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, broken: str
) -> None:
    """Empty, unreadable or gone: the old tokens stop passing, inline ones still do.

    Revocation by emptying the Secret works; a good file later is picked up again.
    """
    volume = SecretVolume(tmp_path)
    volume.write("old-token\n")
    clock = Clock()
    watched = _watch(volume, clock)
    bearer = BearerAuth((b"inline",), watched)
    bearer.check("Bearer old-token")
    if broken == "empty":
        volume.write("\n")
    elif broken == "unreadable":
        volume.write("")
        (volume.root / "..data" / "tokens").write_bytes(b"\xff\xfe not utf-8")
    else:
        os.unlink(volume.path)
    clock.now += 1.0
    with caplog.at_level(logging.ERROR, logger="inference_server"):
        with pytest.raises(ApiError) as refused:
            bearer.check("Bearer old-token")
        clock.now += 1.0
        with pytest.raises(ApiError):
            bearer.check("Bearer old-token")
    assert refused.value.status == 401
    assert len(caplog.records) == 1, caplog.text  # once per change, not per request
    assert "refused until" in caplog.text
    bearer.check("Bearer inline")
    if broken == "removed":
        volume.path.symlink_to("..data/tokens")
    volume.write("fresh-token\n")
    clock.now += 1.0
    bearer.check("Bearer fresh-token")


def test_the_app_picks_up_a_rotated_secret(
    make_app: Callable[..., Flask], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the prediction routes: the old token works, then the new one and not the old."""
    monkeypatch.setattr(auth, "CHECK_INTERVAL", 0.0)  # every request stats: no sleeping here
    volume = SecretVolume(tmp_path)
    volume.write("first-token\n")
    client = make_app(AUTH_TOKENS_FILE=str(volume.path)).test_client()

    def status(token: str) -> int:
        headers = {"Authorization": f"Bearer {token}"}
        return client.post("/predict", json={"features": SETOSA}, headers=headers).status_code

    assert (status("first-token"), status("second-token")) == (200, 401)
    volume.write("second-token\n")
    assert (status("first-token"), status("second-token")) == (401, 200)
