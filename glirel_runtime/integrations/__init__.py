"""Integrations of the runtime with other systems; each module imports its own optional dependency.

* `cli`: the `glirel-runtime` command.
* `spacy_component`: the `glirel_onnx` spaCy pipeline component.
* `ray`: Ray Data batch extraction.
* `serve`: a Ray Serve application.
* `triton_client`: run the graph on a Triton Inference Server (`TritonEngine`).
"""
