"""isomodel_client: a client for the isomodel REST API, one file, standard library only.

    from isomodel_client import IsomodelClient, IsomodelError

    client = IsomodelClient("http://127.0.0.1:8000")
    r = client.predict("gc-scanner", "ATGCGCTATAAT", task="gc_content")
    print(r["gc_content"])
    try:
        client.predict("gc-scanner", "ATGXZ", task="gc_content")
    except IsomodelError as e:
        print(e.code, e.status, e.message, e.details)   # INVALID_SEQUENCE 400 ...

    # Any input type: text, a JSON value, tensors, chat messages, an image or a recording.
    client.predict("langid", input="bonjour tout le monde")
    client.predict("triage", input={"symptoms": ["headache"]}, task="triage")
    client.predict("digits", input=media_input("seven.png"))       # a path, or bytes
    client.predict_batch("digits", inputs=[media_input(b) for b in images])
    client.predict_media("digits", "seven.png")                   # the bytes as multipart (or upload="raw")
    client.predict_media_batch("digits", ["seven.png", png_bytes])

    # Durable jobs, records of any type; results in input order.
    job = client.submit_job("langid", records=[{"id": "a", "input": "hola"}, "hello there"])
    client.wait_job(job["id"])
    for r in client.job_results(job["id"]):
        print(r["metadata"]["request_id"], r["status"], r.get("output") or r["error"])

Every method returns the envelope's ``data`` (a dict) and raises ``IsomodelError`` for an error
envelope (``code`` as in the REST API: INVALID_SEQUENCE, INVALID_INPUT, UNSUPPORTED_MEDIA_TYPE,
MODEL_NOT_FOUND, ...: ``ERROR_CODES``) or when no answer arrives (``NETWORK_ERROR`` / ``TIMEOUT``,
status 0).

Also a small command line (``--api-key`` or ISOMODEL_API_KEY for a gateway with auth on):

    python3 isomodel_client.py [--url URL] [--api-key KEY] health
    python3 isomodel_client.py [--url URL] models
    python3 isomodel_client.py [--url URL] info MODEL
    python3 isomodel_client.py [--url URL] predict MODEL SEQUENCE [SEQUENCE ...] [--task T] [-o key=value]
    python3 isomodel_client.py [--url URL] predict MODEL --input JSON | --file PATH [--upload json|multipart|raw] [--task T]
"""

from __future__ import annotations

import base64
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

__all__ = ["IsomodelClient", "IsomodelError", "ERROR_CODES", "media_input", "MediaUpload"]
__version__ = "0.2.0"

#: The gateway's error codes (src/errors.ts), the job API's 409s, and the client's own (status 0 / not JSON).
ERROR_CODES = (
    "INVALID_REQUEST",
    "INVALID_SEQUENCE",
    "SEQUENCE_TOO_LONG",
    "LOW_INFORMATION_SEQUENCE",
    "INVALID_INPUT",
    "INPUT_TOO_LONG",
    "UNAUTHORIZED",
    "FORBIDDEN",
    "REQUEST_TIMEOUT",
    "MODEL_NOT_FOUND",
    "NOT_FOUND",
    "PAYLOAD_TOO_LARGE",
    "UNSUPPORTED_MEDIA_TYPE",
    "VALIDATION_ERROR",
    "HEADERS_TOO_LARGE",
    "RATE_LIMITED",
    "QUEUE_FULL",
    "QUOTA_EXCEEDED",
    "CANCELLED",
    "PREDICTION_FAILED",
    "INTERNAL_ERROR",
    "MODEL_NOT_LOADED",
    "PREDICTION_TIMEOUT",
    "STORAGE_UNAVAILABLE",
    "IDEMPOTENCY_CONFLICT",
    "JOB_NOT_FINISHED",
    "CONFLICT",
    "UNSAFE_ARCHIVE",
    "DOWNLOAD_FAILED",
    "NETWORK_ERROR",
    "TIMEOUT",
    "INVALID_RESPONSE",
)

_EXTENSION_FORMATS = {
    "png": "png", "jpg": "jpeg", "jpeg": "jpeg", "gif": "gif", "bmp": "bmp", "webp": "webp",
    "wav": "wav", "flac": "flac", "ogg": "ogg", "oga": "ogg", "mp3": "mp3",
}

_MISSING = object()


#: Media to send: a file path or the bytes themselves.
MediaUpload = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview]


def media_input(source: MediaUpload, format: Optional[str] = None) -> Dict[str, Any]:
    """Image or audio as an input value: ``source`` is a file path or the bytes themselves.

    Returns ``{"data": <base64>, "format": ...}`` (the format from ``format``, else the file's
    extension; the gateway sniffs the bytes and checks they are what they claim to be).
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        raw = bytes(source)
    else:
        path = os.fspath(source)
        with open(path, "rb") as f:
            raw = f.read()
        if format is None:
            format = _EXTENSION_FORMATS.get(os.path.splitext(path)[1][1:].lower())
    out: Dict[str, Any] = {"data": base64.b64encode(raw).decode("ascii")}
    if format is not None:
        out["format"] = format
    return out


#: The media type each format is sent as.
_MEDIA_TYPES = {
    "png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif", "bmp": "image/bmp", "webp": "image/webp",
    "wav": "audio/wav", "flac": "audio/flac", "ogg": "audio/ogg", "mp3": "audio/mpeg",
}

class _Raw:
    """A request body sent as it is (bytes with their content type), not as JSON."""

    def __init__(self, data: bytes, content_type: str) -> None:
        self.data = data
        self.content_type = content_type


def _media_part(source: MediaUpload, format: Optional[str]) -> "tuple[str, bytes, str]":
    """(file name, bytes, media type) of a path or bytes; the type from ``format``, else the extension."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        filename, raw = "upload", bytes(source)
    else:
        path = os.fspath(source)
        with open(path, "rb") as f:
            raw = f.read()
        filename = os.path.basename(path) or "upload"
        if format is None:
            format = _EXTENSION_FORMATS.get(os.path.splitext(path)[1][1:].lower())
    media_type = _MEDIA_TYPES.get((format or "").lower(), "application/octet-stream")
    return filename, raw, media_type


def _multipart(fields: Mapping[str, Any], files: Sequence["tuple[str, bytes, str]"]) -> _Raw:
    """A multipart/form-data body: each field as text (objects as JSON), each file as a ``file`` part."""
    boundary = "isomodel-" + os.urandom(16).hex()
    marker = b"--" + boundary.encode("ascii")
    out: List[bytes] = []
    for key, value in fields.items():
        text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
        out += [marker, f'\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'.encode("ascii"), text.encode("utf-8"), b"\r\n"]
    for filename, raw, media_type in files:
        if marker in raw:  # 128 random bits: never in practice, but a part must not hold its boundary
            return _multipart(fields, files)
        # The name travels quoted; quotes, backslashes and line breaks would end it early.
        safe = "".join(ch if ch.isprintable() and ch not in '"\\' else "_" for ch in filename)
        head = f'\r\nContent-Disposition: form-data; name="file"; filename="{safe}"\r\nContent-Type: {media_type}\r\n\r\n'
        out += [marker, head.encode("utf-8"), raw, b"\r\n"]
    out.append(marker + b"--\r\n")
    return _Raw(b"".join(out), f"multipart/form-data; boundary={boundary}")


def _record_object(r: Any) -> Any:
    """A job record as the gateway's exchange reader takes it back unchanged.

    A string is a sequence (or text); a dict ``{"id", "input" | "sequence", "task", "organism",
    "parameters"}`` is one record: a typed input is sent inside ``{"input": {"input": ...}}`` so
    that a JSON input with ``sequence`` or ``input`` keys is never read as the exchange wrapper.
    """
    if isinstance(r, str):
        return r
    if not isinstance(r, Mapping):
        raise TypeError(f"a job record is a string or a dict, not {type(r).__name__}")
    head = {k: r[k] for k in ("id", "task") if r.get(k) is not None}
    extra = {k: r[k] for k in ("organism", "parameters") if r.get(k) is not None}
    if r.get("input") is not None:
        return {**head, "input": {"input": r["input"], **extra}}
    return {**head, **({"sequence": r["sequence"]} if "sequence" in r else {}), **extra}


class IsomodelError(Exception):
    """An isomodel error envelope, or a request that got no answer (status 0)."""

    def __init__(
        self,
        code: str,
        status: int,
        message: str,
        details: Any = None,
        request_id: Optional[str] = None,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(f"{code} ({status}): {message}")
        self.code = code
        self.status = status
        self.message = message
        self.details = details
        self.request_id = request_id
        self.retry_after = retry_after


def _quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")


class IsomodelClient:
    """Typed-by-convention access to one isomodel gateway."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        timeout: Optional[float] = 60.0,
        headers: Optional[Mapping[str, str]] = None,
        api_key: Optional[str] = None,
    ) -> None:
        """``api_key``: for a gateway with auth on (sent as ``Authorization: Bearer <key>``)."""
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self.headers.update(headers or {})

    # -- models -------------------------------------------------------------------------------

    def health(self, model: Optional[str] = None) -> Dict[str, Any]:
        """Health of the default model, or of ``model``."""
        return self._request("GET", f"/models/{_quote(model)}/health" if model else "/health")

    def models(self) -> Dict[str, Any]:
        """``{"models": [...], "invalid_packages": [...]}``: every package and its status."""
        return self._request("GET", "/v1/models")

    def model_info(self, name: str) -> Dict[str, Any]:
        return self._request("GET", f"/models/{_quote(name)}/info")

    def load(self, name: str) -> Dict[str, Any]:
        """Loads a model and waits until it is ready."""
        return self._request("POST", f"/v1/models/{_quote(name)}/load", {})

    def unload(self, name: str) -> Dict[str, Any]:
        return self._request("POST", f"/v1/models/{_quote(name)}/unload", {})

    def reload(self) -> Dict[str, Any]:
        """Re-reads the models dir; returns added / updated / removed / unchanged / errors."""
        return self._request("POST", "/v1/models/reload", {})

    # -- predictions --------------------------------------------------------------------------

    def predict(
        self,
        name: str,
        sequence: Optional[str] = None,
        task: Optional[str] = None,
        options: Optional[Mapping[str, Any]] = None,
        sequence_type: Optional[str] = None,
        timeout_ms: Optional[int] = None,
        priority: Optional[int] = None,
        *,
        input: Any = _MISSING,
    ) -> Dict[str, Any]:
        """One prediction: the model's output fields plus model, version, task_type, processing_time.

        ``sequence`` for a sequence (as always), or ``input=`` for an input of any type: text, a
        JSON value, named tensors, chat messages, an image or a recording (``media_input``).
        Sequence answers carry sequence_length and sequence_type; others input_type and input_size.
        """
        body: Dict[str, Any] = {}
        # Both given go as they are: the gateway's INVALID_REQUEST says to send one.
        if input is not _MISSING:
            body["input"] = input
        if sequence is not None or input is _MISSING:
            body["sequence"] = sequence
        body.update(_common(task, options, sequence_type, timeout_ms, priority))
        return self._request("POST", f"/models/{_quote(name)}/predict", body)

    def predict_batch(
        self,
        name: str,
        sequences: Optional[Sequence[str]] = None,
        task: Optional[str] = None,
        options: Optional[Mapping[str, Any]] = None,
        sequence_type: Optional[str] = None,
        timeout_ms: Optional[int] = None,
        priority: Optional[int] = None,
        *,
        inputs: Optional[Sequence[Any]] = None,
    ) -> Dict[str, Any]:
        """Many sequences (or ``inputs=`` of any type), results in input order (a failed one has ``error``).

        Items of a non-sequence task are named by ``index`` (an image is never echoed back). A bad
        input refuses the whole batch: its IsomodelError's ``details["index"]`` says which.
        """
        body: Dict[str, Any] = {}
        if inputs is not None:
            body["inputs"] = list(inputs)
        if sequences is not None or inputs is None:
            body["sequences"] = list(sequences or [])
        body.update(_common(task, options, sequence_type, timeout_ms, priority))
        return self._request("POST", f"/models/{_quote(name)}/predict/batch", body)

    def predict_media(
        self,
        name: str,
        source: MediaUpload,
        task: Optional[str] = None,
        options: Optional[Mapping[str, Any]] = None,
        format: Optional[str] = None,
        upload: str = "multipart",
        timeout_ms: Optional[int] = None,
        priority: Optional[int] = None,
    ) -> Dict[str, Any]:
        """One image or recording sent as bytes, not base64 JSON: ``source`` is a file path or bytes.

        ``upload="multipart"`` (default) sends a form with one ``file`` part; ``"raw"`` sends the
        bytes as the body with their media type (from ``format`` or the file's extension; bytes of
        no known type go as multipart, where the gateway sniffs them).
        """
        if upload not in ("multipart", "raw"):
            raise ValueError(f"upload is multipart or raw, not {upload!r}")
        fields = _common(task, options, None, timeout_ms, priority)
        filename, raw, media_type = _media_part(source, format)
        route = f"/models/{_quote(name)}/predict"
        if upload == "raw" and media_type.startswith(("image/", "audio/")):
            query = {k: json.dumps(v) if isinstance(v, dict) else str(v) for k, v in fields.items()}
            return self._request("POST", route + (f"?{urllib.parse.urlencode(query)}" if query else ""), _Raw(raw, media_type))
        return self._request("POST", route, _multipart(fields, [(filename, raw, media_type)]))

    def predict_media_batch(
        self,
        name: str,
        sources: Sequence[MediaUpload],
        task: Optional[str] = None,
        options: Optional[Mapping[str, Any]] = None,
        format: Optional[str] = None,
        timeout_ms: Optional[int] = None,
        priority: Optional[int] = None,
    ) -> Dict[str, Any]:
        """Many images or recordings as one multipart request (a ``file`` part each); items by ``index``."""
        fields = _common(task, options, None, timeout_ms, priority)
        parts = [_media_part(s, format) for s in sources]
        return self._request("POST", f"/models/{_quote(name)}/predict/batch", _multipart(fields, parts))

    # -- jobs ---------------------------------------------------------------------------------

    def submit_job(
        self,
        model: Optional[str] = None,
        records: Optional[Sequence[Any]] = None,
        task: Optional[str] = None,
        *,
        pipeline: Optional[Mapping[str, Any]] = None,
        data: Optional[str] = None,
        format: Optional[str] = None,
        options: Optional[Mapping[str, Any]] = None,
        organism: Optional[str] = None,
        name: Optional[str] = None,
        workers: Optional[int] = None,
        chunk_size: Optional[int] = None,
        priority: Optional[int] = None,
        idempotency_key: Optional[str] = None,
    ) -> Dict[str, Any]:
        """A durable job (owned by this client's API key) over a model or a ``pipeline``.

        ``records``: strings (sequences, or text for a text task) or dicts ``{"id", "input" |
        "sequence", "task", "organism", "parameters"}`` of any input type; or ``data``, file text
        in one of the exchange formats (``format``: json, jsonl, fasta, csv, tsv, text). A record
        that fails gets its error in the results; the others run.
        """
        body: Dict[str, Any] = {}
        if model is not None:
            body["model"] = model
        if pipeline is not None:
            body["pipeline"] = dict(pipeline)
        if records is not None:
            body["inputs"] = [_record_object(r) for r in records]
        for key, value in (("task", task), ("data", data), ("format", format), ("organism", organism), ("name", name),
                           ("workers", workers), ("chunk_size", chunk_size), ("priority", priority)):
            if value is not None:
                body[key] = value
        if options is not None:
            body["options"] = dict(options)
        headers = {"idempotency-key": idempotency_key} if idempotency_key is not None else None
        return self._request("POST", "/v1/jobs", body, headers)

    def job(self, job_id: str) -> Dict[str, Any]:
        """A job's status and progress."""
        return self._request("GET", f"/v1/jobs/{_quote(job_id)}")

    def jobs(self, status: Optional[str] = None, model: Optional[str] = None, limit: Optional[int] = None, offset: Optional[int] = None) -> Dict[str, Any]:
        """This key's jobs (every job for an admin key), newest first."""
        q = {k: v for k, v in (("status", status), ("model", model), ("limit", limit), ("offset", offset)) if v is not None}
        return self._request("GET", "/v1/jobs" + (f"?{urllib.parse.urlencode(q)}" if q else ""))

    def cancel_job(self, job_id: str) -> Dict[str, Any]:
        return self._request("POST", f"/v1/jobs/{_quote(job_id)}/cancel", {})

    def wait_job(self, job_id: str, interval: float = 0.25, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Polls a job until it is over (succeeded, failed or cancelled); TIMEOUT after ``timeout`` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["status"] in ("succeeded", "failed", "cancelled"):
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise IsomodelError("TIMEOUT", 0, f"job {job_id} is still {job['status']} after {timeout} s")
            time.sleep(interval)

    def job_results(self, job_id: str, start: int = 0, follow: bool = True) -> List[Dict[str, Any]]:
        """A job's results in input order from index ``start``: one dict per record
        (``task``, ``status``, ``output`` or ``error``, ``metadata``). With ``follow`` the answer
        ends when the job does (within this client's timeout: ``wait_job`` first for a long job)."""
        q = urllib.parse.urlencode({"from": start, "follow": "true" if follow else "false"})
        status, raw, headers = self._exchange("GET", f"/v1/jobs/{_quote(job_id)}/results?{q}")
        if status >= 400:
            self._raise(status, raw, headers)
        return [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]

    # -- transport ----------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: Optional[Any] = None, headers: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
        status, raw, res_headers = self._exchange(method, path, body, headers)
        try:
            env = json.loads(raw.decode("utf-8"))
        except ValueError:
            code = "INVALID_RESPONSE" if status < 400 else "INTERNAL_ERROR"
            raise IsomodelError(code, status, f"not a JSON answer (HTTP {status}): {raw[:200]!r}") from None
        if status >= 400 or not isinstance(env, dict) or env.get("success") is not True:
            self._raise(status, raw, res_headers, env)
        return env.get("data")

    def _raise(self, status: int, raw: bytes, res_headers: Any, env: Any = _MISSING) -> None:
        """Raises the IsomodelError an error answer carries."""
        if env is _MISSING:
            try:
                env = json.loads(raw.decode("utf-8"))
            except ValueError:
                raise IsomodelError("INTERNAL_ERROR", status, f"not a JSON answer (HTTP {status}): {raw[:200]!r}") from None
        error = env.get("error") if isinstance(env, dict) else None
        error = error if isinstance(error, dict) else {}
        retry = res_headers.get("retry-after") if res_headers is not None else None
        raise IsomodelError(
            str(error.get("code") or "INTERNAL_ERROR"),
            status,
            str(env.get("message") if isinstance(env, dict) else f"HTTP {status}"),
            error.get("details"),
            env.get("request_id") if isinstance(env, dict) else None,
            float(retry) if retry and retry.replace(".", "", 1).isdigit() else None,
        )

    def _exchange(self, method: str, path: str, body: Optional[Any] = None, extra_headers: Optional[Mapping[str, str]] = None) -> "tuple[int, bytes, Any]":
        """One HTTP exchange: (status, body bytes, headers); no answer raises NETWORK_ERROR / TIMEOUT."""
        headers = {"accept": "application/json", **self.headers, **(extra_headers or {})}
        data = None
        if isinstance(body, _Raw):
            data = body.data
            headers["content-type"] = body.content_type
        elif body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["content-type"] = "application/json"
        req = urllib.request.Request(self.base_url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as res:
                return res.status, res.read(), res.headers
        except urllib.error.HTTPError as e:  # an answer with an error status: read its envelope
            return e.code, e.read(), e.headers
        except (socket.timeout, TimeoutError) as e:
            raise IsomodelError("TIMEOUT", 0, f"no answer from {self.base_url} within {self.timeout} s") from e
        except urllib.error.URLError as e:
            if isinstance(e.reason, (socket.timeout, TimeoutError)):
                raise IsomodelError("TIMEOUT", 0, f"no answer from {self.base_url} within {self.timeout} s") from e
            raise IsomodelError("NETWORK_ERROR", 0, f"cannot reach {self.base_url}: {e.reason}") from e
        except OSError as e:
            raise IsomodelError("NETWORK_ERROR", 0, f"cannot reach {self.base_url}: {e}") from e


def _common(
    task: Optional[str],
    options: Optional[Mapping[str, Any]],
    sequence_type: Optional[str],
    timeout_ms: Optional[int],
    priority: Optional[int],
) -> Dict[str, Any]:
    b: Dict[str, Any] = {}
    if task is not None:
        b["task_type"] = task
    if options is not None:
        b["options"] = dict(options)
    if sequence_type is not None:
        b["sequence_type"] = sequence_type
    if timeout_ms is not None:
        b["timeout_ms"] = timeout_ms
    if priority is not None:
        b["priority"] = priority
    return b


def _parse_option(pair: str) -> "tuple[str, Any]":
    key, sep, value = pair.partition("=")
    if not sep or not key:
        raise SystemExit(f"-o takes key=value (got {pair!r})")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def main(argv: Optional[List[str]] = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="isomodel_client.py", description="isomodel REST client")
    p.add_argument("--url", default=os.environ.get("ISOMODEL_URL", "http://127.0.0.1:8000"))
    p.add_argument("--api-key", default=os.environ.get("ISOMODEL_API_KEY"), help="API key (env ISOMODEL_API_KEY)")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("health")
    sub.add_parser("models")
    info = sub.add_parser("info")
    info.add_argument("model")
    pr = sub.add_parser("predict")
    pr.add_argument("model")
    pr.add_argument("sequences", nargs="*")
    pr.add_argument("--task")
    pr.add_argument("--input", help="an input of any type, as JSON (a JSON string for text)")
    pr.add_argument("--file", action="append", default=[], help="an image or audio file (repeat for a batch)")
    pr.add_argument("--upload", choices=("json", "multipart", "raw"), default="json",
                    help="how --file travels: base64 in JSON (default), a multipart form, or the raw body (one file)")
    pr.add_argument("-o", "--option", action="append", default=[], help="key=value (value parsed as JSON when it can be)")
    args = p.parse_args(argv)

    client = IsomodelClient(args.url, api_key=args.api_key)
    try:
        if args.cmd == "health":
            out: Any = client.health()
        elif args.cmd == "models":
            out = client.models()
        elif args.cmd == "info":
            out = client.model_info(args.model)
        else:
            options = dict(_parse_option(o) for o in args.option)
            given = sum(1 for g in (args.sequences, args.input is not None, args.file) if g)
            if given != 1:
                p.error("predict takes sequences, --input or --file (one of them)")
            if args.input is not None:
                try:
                    value = json.loads(args.input)
                except ValueError as e:
                    p.error(f"--input is not valid JSON: {e}")
                out = client.predict(args.model, input=value, task=args.task, options=options)
            elif args.file and args.upload != "json":
                if len(args.file) == 1:
                    out = client.predict_media(args.model, args.file[0], task=args.task, options=options, upload=args.upload)
                elif args.upload == "raw":
                    p.error("--upload raw sends one file; use multipart for several")
                else:
                    out = client.predict_media_batch(args.model, args.file, task=args.task, options=options)
            elif args.file:
                files = [media_input(f) for f in args.file]
                if len(files) == 1:
                    out = client.predict(args.model, input=files[0], task=args.task, options=options)
                else:
                    out = client.predict_batch(args.model, inputs=files, task=args.task, options=options)
            elif len(args.sequences) == 1:
                out = client.predict(args.model, args.sequences[0], task=args.task, options=options)
            else:
                out = client.predict_batch(args.model, args.sequences, task=args.task, options=options)
    except IsomodelError as e:
        print(json.dumps({"error": {"code": e.code, "status": e.status, "message": e.message, "details": e.details}}), file=sys.stderr)
        return 1
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
