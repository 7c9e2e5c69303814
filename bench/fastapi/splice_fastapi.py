"""The FastAPI + uvicorn peer of the `baseline` benchmark: one app per model, as the seeds of
this project were written. It serves the splice-junction classifier at POST /predict
{"sequence": "<60 bp>"} with the numpy ONNX interpreter of bench/flask/splice_app.py (the same
code, imported), one forward pass of batch 1 per request, no batching.

Usage (Debian's /usr/bin/python3 with python3-fastapi, python3-uvicorn, python3-onnx, python3-numpy):
  python3 bench/fastapi/splice_fastapi.py MODEL.onnx PORT [async|sync]

async (default): `async def` routes, the forward pass on the event loop (it takes ~0.1-0.3 ms,
less than a thread hand-off); sync: `def` routes, run by Starlette's thread pool, the other
common way such apps are written. One uvicorn process, access log off (isomodel runs the
benchmark at log level warn too).
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "flask"))

import uvicorn  # noqa: E402
from fastapi import FastAPI, HTTPException  # noqa: E402
from pydantic import BaseModel  # noqa: E402

import splice_app  # noqa: E402  the interpreter, shared with the Flask baseline


class PredictRequest(BaseModel):
    sequence: str


def make_app(model_path, mode):
    graph = splice_app.Graph(model_path)
    app = FastAPI()

    def run(sequence):
        try:
            return splice_app.predict(graph, [sequence])[0]
        except ValueError as e:
            raise HTTPException(status_code=400, detail=str(e))

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    if mode == "sync":
        @app.post("/predict")
        def predict_sync(body: PredictRequest):
            return run(body.sequence)
    else:
        @app.post("/predict")
        async def predict_async(body: PredictRequest):
            return run(body.sequence)

    return app


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4) or (len(sys.argv) == 4 and sys.argv[3] not in ("async", "sync")):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    mode = sys.argv[3] if len(sys.argv) == 4 else "async"
    uvicorn.run(make_app(sys.argv[1], mode), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
