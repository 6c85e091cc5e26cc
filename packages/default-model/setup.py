"""Build hook: copy the default artifact from the checkout's models/ into the wheel.

Which folder is read from `DEFAULT_MODEL_NAME` in glirel_runtime/resolve.py, so the name lives in one place
and git holds one copy of the artifact.
"""
import ast
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
CHECKOUT = HERE.parent.parent
PACKAGE = "glirel_onnx_default_model"
ARTIFACT_FILES = ("glirel_artifact.json", "model.onnx", "tokenizer.json")


def default_model_name() -> str:
    source = CHECKOUT / "glirel_runtime" / "resolve.py"
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "DEFAULT_MODEL_NAME" for t in node.targets):
            return ast.literal_eval(node.value)
    raise SystemExit(f"DEFAULT_MODEL_NAME not found in {source}")


class BuildWithArtifact(build_py):
    def run(self):
        super().run()
        name = default_model_name()
        source = CHECKOUT / "models" / name
        missing = [f for f in ARTIFACT_FILES if not (source / f).is_file()]
        if missing:
            raise SystemExit(f"cannot build {PACKAGE}: {source} lacks {missing} (build from a glirel-onnx checkout)")
        target = Path(self.build_lib) / PACKAGE / name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(source, target)


setup(cmdclass={"build_py": BuildWithArtifact})
