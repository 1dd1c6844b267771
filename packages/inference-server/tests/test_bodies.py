"""Reading request bodies: Content-Type, Content-Length, chunked bodies and the size limit."""

from __future__ import annotations

import io
from typing import Any

import pytest

from inference_server.http.bodies import BodyReader, check_content_type, media_type
from inference_server.http.errors import ApiError


def environ(body: bytes, length: str | None = None, *, terminated: bool = False) -> dict[str, Any]:
    """A WSGI environ carrying ``body`` (Content-Length ``length``, or chunked)."""
    env: dict[str, Any] = {"wsgi.input": io.BytesIO(body)}
    if length is not None:
        env["CONTENT_LENGTH"] = length
    if terminated:
        env["wsgi.input_terminated"] = True
    return env


def test_content_length_body_is_read_exactly() -> None:
    """With Content-Length, exactly that many bytes are read (not the rest of the stream)."""
    assert BodyReader(10).read(environ(b"0123456789extra", "10")) == b"0123456789"


@pytest.mark.parametrize("length", ["11", "99999999999999999999"])
def test_content_length_over_the_limit_is_413_unread(length: str) -> None:
    """A declared length over the limit is refused before reading."""
    env = environ(b"x" * 11, length)
    with pytest.raises(ApiError) as error:
        BodyReader(10).read(env)
    assert error.value.status == 413
    assert env["wsgi.input"].tell() == 0


@pytest.mark.parametrize("length", ["-1", "1e3", "abc", "١٢"])
def test_malformed_content_length_is_400(length: str) -> None:
    """A Content-Length that is not plain ASCII digits is a 400."""
    with pytest.raises(ApiError) as error:
        BodyReader(10).read(environ(b"x", length))
    assert error.value.status == 400


@pytest.mark.parametrize(("size", "accepted"), [(9, True), (10, True), (11, False)])
def test_chunked_body_is_bounded(size: int, accepted: bool) -> None:
    """Without Content-Length a terminated stream is read up to limit + 1 bytes."""
    reader = BodyReader(10)
    if accepted:
        assert reader.read(environ(b"x" * size, terminated=True)) == b"x" * size
    else:
        with pytest.raises(ApiError) as error:
            reader.read(environ(b"x" * size, terminated=True))
        assert error.value.status == 413


def test_unterminated_stream_without_length_is_not_read() -> None:
    """WSGI: without a length only a terminated stream may be read; the body is empty."""
    assert BodyReader(10).read(environ(b"xyz")) == b""


@pytest.mark.parametrize(
    ("content_type", "ok"),
    [
        ("", True),
        ("application/json", True),
        ("Application/JSON; charset=UTF-8", True),
        ("application/json;charset=utf8", True),
        ('application/json; charset="utf-8"', True),
        ("application/json; charset=latin-1", False),
        ("text/plain", False),
        ("application/jsonx", False),
    ],
)
def test_check_content_type(content_type: str, ok: bool) -> None:
    """JSON (UTF-8) or nothing; anything else is 415."""
    if ok:
        check_content_type(content_type)
    else:
        with pytest.raises(ApiError) as error:
            check_content_type(content_type)
        assert error.value.status == 415


def test_other_media_types_can_be_accepted() -> None:
    """A protocol may accept more media types (e.g. binary tensors)."""
    check_content_type("application/octet-stream", {"application/octet-stream"})


def test_media_type_parameters() -> None:
    """Parameters are split off, names lower-cased, quotes removed."""
    assert media_type('A/B ; Charset="x" ; q=1') == ("a/b", {"charset": "x", "q": "1"})


def test_large_bodies_past_the_in_flight_budget_get_503() -> None:
    """Large bodies share a per-worker byte budget; small ones are never refused."""
    reader = BodyReader(1 << 20, in_flight_limit=200_000)
    reader.in_flight = 150_000  # held by other requests of this worker

    def environ(body: bytes) -> dict[str, object]:
        return {"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}

    with pytest.raises(ApiError) as refused:
        reader.read(environ(b"x" * 100_000))
    assert refused.value.status == 503
    assert ("Retry-After", "1") in refused.value.headers
    assert reader.read(environ(b"{}")) == b"{}"
    reader.in_flight = 0
    assert len(reader.read(environ(b"x" * 100_000))) == 100_000
    assert reader.in_flight == 0  # released after the read


def test_content_encoding_is_refused() -> None:
    """A Content-Encoding other than identity is a 415, never decoded or ignored."""
    reader = BodyReader(1000)
    body = {"wsgi.input": io.BytesIO(b"{}"), "CONTENT_LENGTH": "2"}
    assert reader.read({**body, "HTTP_CONTENT_ENCODING": "identity"}) == b"{}"
    with pytest.raises(ApiError) as refused:
        reader.read({**body, "HTTP_CONTENT_ENCODING": "gzip"})
    assert refused.value.status == 415


@pytest.mark.parametrize(
    ("coding", "refused"),
    [("chunked", False), (" Chunked ", False), ("gzip, chunked", True), ("identity", True)],
)
def test_transfer_codings_other_than_chunked_are_501(coding: str, refused: bool) -> None:
    """Granian de-chunks ``gzip, chunked`` and passes the header: the app refuses it (501)."""
    env = {**environ(b"{}", terminated=True), "HTTP_TRANSFER_ENCODING": coding}
    if not refused:
        assert BodyReader(1000).read(env) == b"{}"
        return
    with pytest.raises(ApiError) as error:
        BodyReader(1000).read(env)
    assert error.value.status == 501
