"""isomodel_client: a client for the isomodel REST API, one file, standard library only.

    from isomodel_client import IsomodelClient, IsomodelError

    client = IsomodelClient("http://127.0.0.1:8000")
    r = client.predict("gc-scanner", "ATGCGCTATAAT", task="gc_content")
    print(r["gc_content"])
    try:
        client.predict("gc-scanner", "ATGXZ", task="gc_content")
    except IsomodelError as e:
        print(e.code, e.status, e.message, e.details)   # INVALID_SEQUENCE 400 ...

Inputs of other types (text, JSON, tensors, images, audio, chat; docs/models.md):

    client.predict_input("langid", "Où se trouve la gare ?")["prediction"]        # 'fr'
    client.predict_input("my-image", media_input("photo.png"))
    client.predict_inputs("langid", ["Guten Tag", "Buongiorno a tutti"])["predictions"]

Every method returns the envelope's ``data`` (a dict) and raises ``IsomodelError`` for an error
envelope (``code`` as in the REST API: INVALID_SEQUENCE, MODEL_NOT_FOUND, ...) or when no answer
arrives (``NETWORK_ERROR`` / ``TIMEOUT``, status 0).

Also a small command line (``--api-key`` or ISOMODEL_API_KEY for a gateway with auth on):

    python3 isomodel_client.py [--url URL] [--api-key KEY] health
    python3 isomodel_client.py [--url URL] models
    python3 isomodel_client.py [--url URL] info MODEL
    python3 isomodel_client.py [--url URL] predict MODEL SEQUENCE [SEQUENCE ...] [--task T] [-o key=value]
"""

from __future__ import annotations

import base64
import json
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, List, Mapping, Optional, Sequence

__all__ = ["IsomodelClient", "IsomodelError", "media_input"]
__version__ = "0.1.0"


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
        sequence: str,
        task: Optional[str] = None,
        options: Optional[Mapping[str, Any]] = None,
        sequence_type: Optional[str] = None,
        timeout_ms: Optional[int] = None,
        priority: Optional[int] = None,
    ) -> Dict[str, Any]:
        """One sequence: the model's output fields plus model, version, task_type, processing_time."""
        body: Dict[str, Any] = {"sequence": sequence}
        body.update(_common(task, options, sequence_type, timeout_ms, priority))
        return self._request("POST", f"/models/{_quote(name)}/predict", body)

    def predict_batch(
        self,
        name: str,
        sequences: Sequence[str],
        task: Optional[str] = None,
        options: Optional[Mapping[str, Any]] = None,
        sequence_type: Optional[str] = None,
        timeout_ms: Optional[int] = None,
        priority: Optional[int] = None,
    ) -> Dict[str, Any]:
        """Many sequences, results in input order (a failed one has ``error`` instead of output)."""
        body: Dict[str, Any] = {"sequences": list(sequences)}
        body.update(_common(task, options, sequence_type, timeout_ms, priority))
        return self._request("POST", f"/models/{_quote(name)}/predict/batch", body)

    def predict_input(
        self,
        name: str,
        value: Any,
        task: Optional[str] = None,
        options: Optional[Mapping[str, Any]] = None,
        timeout_ms: Optional[int] = None,
        priority: Optional[int] = None,
    ) -> Dict[str, Any]:
        """One input of any type (docs/models.md): a str of text, a JSON value, named tensors,
        an image or recording (``media_input(...)``, base64 text or a data: URL) or a conversation
        ``{"messages": [...]}``. The answer has ``input_type`` and ``input_size``."""
        body: Dict[str, Any] = {"input": value}
        body.update(_common(task, options, None, timeout_ms, priority))
        return self._request("POST", f"/models/{_quote(name)}/predict", body)

    def predict_inputs(
        self,
        name: str,
        values: Sequence[Any],
        task: Optional[str] = None,
        options: Optional[Mapping[str, Any]] = None,
        timeout_ms: Optional[int] = None,
        priority: Optional[int] = None,
    ) -> Dict[str, Any]:
        """Many inputs of one task, results in input order with their ``index``. An input the model
        fails has ``error``; one the gateway refuses raises IsomodelError naming ``inputs[i]``."""
        body: Dict[str, Any] = {"inputs": list(values)}
        body.update(_common(task, options, None, timeout_ms, priority))
        return self._request("POST", f"/models/{_quote(name)}/predict/batch", body)

    # -- transport ----------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: Optional[Any] = None) -> Dict[str, Any]:
        headers = {"accept": "application/json", **self.headers}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["content-type"] = "application/json"
        req = urllib.request.Request(self.base_url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as res:
                status, raw, res_headers = res.status, res.read(), res.headers
        except urllib.error.HTTPError as e:  # an answer with an error status: read its envelope
            status, raw, res_headers = e.code, e.read(), e.headers
        except (socket.timeout, TimeoutError) as e:
            raise IsomodelError("TIMEOUT", 0, f"no answer from {self.base_url} within {self.timeout} s") from e
        except urllib.error.URLError as e:
            if isinstance(e.reason, (socket.timeout, TimeoutError)):
                raise IsomodelError("TIMEOUT", 0, f"no answer from {self.base_url} within {self.timeout} s") from e
            raise IsomodelError("NETWORK_ERROR", 0, f"cannot reach {self.base_url}: {e.reason}") from e
        except OSError as e:
            raise IsomodelError("NETWORK_ERROR", 0, f"cannot reach {self.base_url}: {e}") from e
        try:
            env = json.loads(raw.decode("utf-8"))
        except ValueError:
            code = "INVALID_RESPONSE" if status < 400 else "INTERNAL_ERROR"
            raise IsomodelError(code, status, f"not a JSON answer (HTTP {status}): {raw[:200]!r}") from None
        if status >= 400 or not isinstance(env, dict) or env.get("success") is not True:
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
        return env.get("data")


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


def media_input(data: "bytes | str", format: Optional[str] = None) -> Dict[str, Any]:
    """An image or audio input: ``data`` is the file's bytes or its path. The gateway reads the
    format from the bytes; ``format`` (png, jpeg, wav, ...) only has to agree with them."""
    if isinstance(data, str):
        with open(data, "rb") as fh:
            data = fh.read()
    out: Dict[str, Any] = {"data": base64.b64encode(data).decode("ascii")}
    if format is not None:
        out["format"] = format
    return out


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
    import os

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
    pr.add_argument("sequences", nargs="+")
    pr.add_argument("--task")
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
            if len(args.sequences) == 1:
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
