"""The default model of glirel-onnx as package data: one artifact folder beside this file.

glirel_runtime finds it (`glirel_runtime.resolve.default_model_dir()`); nothing here needs importing.
"""
