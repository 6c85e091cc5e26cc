"""Triton Inference Server as the runtime's engine: the server runs the graph, the client runs
everything else (validation, tokenization, batching, decoding) with the runtime's own pipeline.

Serve an artifact with `glirel-export ... --triton REPO_DIR` (or `python -m glirel_export.triton`),
then load the **served version's** artifact folder with a `TritonEngine`::

    from glirel_runtime import GLiREL
    from glirel_runtime.integrations.triton_client import TritonEngine

    model = GLiREL("REPO_DIR/glirel/1", engine=TritonEngine("localhost:8001", "glirel"))
    model.predict_relations("Marie Curie was born in Warsaw .", ["place of birth"],
                            ner=[[0, 1, "PER", "Marie Curie"], [5, 5, "LOC", "Warsaw"]])

Every `GLiREL` method works unchanged (batches, streams, documents, label groups): each
batch the pipeline plans becomes one Triton request. ``text_lengths`` (``[batch]`` in the
graph) travels as ``[batch, 1]``, as the repository's ``config.pbtxt`` declares.
Needs ``pip install "glirel-onnx[triton]"`` (tritonclient).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

WIRE_RESHAPED = {"text_lengths": (-1, 1)}
"""Graph inputs sent in another shape than the graph's (Triton reshapes them back)."""


class TritonEngine:
    """A pipeline engine that sends each batch to Triton over gRPC.

    `client`: an existing ``tritonclient.grpc.InferenceServerClient`` (default: one for `url`).
    `output_names`: the graph outputs to ask for (default: the model's, from the server).

    Example:
        >>> engine = TritonEngine("localhost:8001", "glirel")  # doctest: +SKIP
        >>> outputs = engine.run(inputs)  # graph inputs from FeatureBuilder.pad  # doctest: +SKIP
    """

    def __init__(self, url: str = "localhost:8001", model_name: str = "glirel", client: Any = None,
                 output_names: Optional[Sequence[str]] = None):
        import tritonclient.grpc as grpcclient

        self._grpc = grpcclient
        self.client = client if client is not None else grpcclient.InferenceServerClient(url)
        self.model_name = model_name
        if output_names is None:
            metadata = self.client.get_model_metadata(model_name)
            output_names = [output.name for output in metadata.outputs]
        self.output_names = list(output_names)
        self.providers = [f"triton:{url}/{model_name}"]

    def request(self, inputs: dict[str, np.ndarray]) -> list[Any]:
        """Graph inputs → the gRPC request tensors, in the wire shapes of ``config.pbtxt``."""
        tensors = []
        for name, array in inputs.items():
            array = np.ascontiguousarray(array.reshape(WIRE_RESHAPED[name]) if name in WIRE_RESHAPED else array)
            tensor = self._grpc.InferInput(name, list(array.shape), "INT64")
            tensor.set_data_from_numpy(array.astype(np.int64, copy=False))
            tensors.append(tensor)
        return tensors

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One Triton request for one padded batch; outputs by name."""
        wanted = [self._grpc.InferRequestedOutput(name) for name in self.output_names]
        result = self.client.infer(self.model_name, self.request(inputs), outputs=wanted)
        return {name: result.as_numpy(name) for name in self.output_names}
