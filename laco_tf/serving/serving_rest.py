"""TF Serving's REST bodies for a signature, built as its model server builds them (our
helper, for clients and tests; TF Serving's "RESTful API": request and response formats).

Row format: the request lists one object per example (`{"instances": [{"text": ...}]}`);
the response lists one entry per example holding its row of every output, which the server
allows only when every output's first dimension is the same batch size. Column format:
the request holds each input whole (`{"inputs": {"text": [...]}}`), the response each
output whole (`{"outputs": {...}}`). A signature with one output answers bare values.
"""

from typing import Dict, List, Sequence

import numpy as np


def predict_request(texts: Sequence[str], row_format: bool = True) -> dict:
  """The body of a `:predict` request for `serving_default` (input `text`)."""
  if row_format:
    return {"instances": [{"text": t} for t in texts]}
  return {"inputs": {"text": list(texts)}}


def request_texts(body: dict) -> List[str]:
  """The `text` input the server feeds the signature for a request body of either format."""
  if "instances" in body:
    return [row["text"] if isinstance(row, dict) else row for row in body["instances"]]
  inputs = body["inputs"]
  return list(inputs["text"] if isinstance(inputs, dict) else inputs)


def _plain(value: np.ndarray):
  """JSON values: strings decoded, numpy scalars and arrays as Python ones."""
  if value.dtype.kind in "SO":
    return np.vectorize(lambda x: x.decode("utf-8") if isinstance(x, bytes) else x,
                        otypes=[object])(value).tolist()
  return value.tolist()


def predict_response(outputs: Dict[str, object], row_format: bool = True) -> dict:
  """The body TF Serving answers for a signature's `outputs` (tensors or arrays).

  Raises ValueError, as the server refuses such a request, when the row format is asked
  of outputs whose first dimensions differ (e.g. a label list of shape [n]).
  """
  arrays = {k: np.asarray(v.numpy() if hasattr(v, "numpy") else v) for k, v in outputs.items()}
  if not row_format:
    if len(arrays) == 1:
      return {"outputs": _plain(next(iter(arrays.values())))}
    return {"outputs": {k: _plain(a) for k, a in arrays.items()}}
  sizes = {k: (a.shape[0] if a.ndim else None) for k, a in arrays.items()}
  if None in sizes.values() or len(set(sizes.values())) != 1:
    raise ValueError("the row format needs every output's first dimension to be the batch; "
                     f"got {sizes}")
  batch = next(iter(sizes.values()))
  if len(arrays) == 1:
    return {"predictions": _plain(next(iter(arrays.values())))}
  return {"predictions": [{k: _plain(a[i]) for k, a in arrays.items()} for i in range(batch)]}
