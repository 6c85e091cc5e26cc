"""Where the default model is found, and the built wheels in a fresh venv outside the checkout: offline, torch blocked."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from glirel_runtime import resolve
from glirel_runtime.resolve import ENV_VAR, MODEL_PACKAGE, default_model_dir

REPO = Path(__file__).resolve().parents[1]
TEXT = "Apple was founded by Steve Jobs in Cupertino."


def fake_artifact(directory: Path) -> Path:
    directory.mkdir(parents=True)
    (directory / "glirel_artifact.json").write_text("{}")
    return directory


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """No variable, no model package, no checkout copy: each test adds the one it is about."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setattr(resolve, "MODEL_PACKAGE", "glirel_onnx_default_model_absent_here")
    monkeypatch.setattr(resolve, "CHECKOUT_MODELS", tmp_path / "no-checkout" / "models")
    return tmp_path


def test_nothing_found_says_how_to_get_a_model(nowhere):
    with pytest.raises(FileNotFoundError) as error:
        default_model_dir()
    message = str(error.value)
    assert 'pip install "glirel-onnx[default-model]"' in message and ENV_VAR in message


def test_order_variable_then_package_then_checkout(nowhere, monkeypatch):
    checkout = fake_artifact(nowhere / "checkout" / "models" / resolve.DEFAULT_MODEL_NAME)
    monkeypatch.setattr(resolve, "CHECKOUT_MODELS", checkout.parent)
    assert default_model_dir() == checkout

    package = nowhere / "site" / "some_model_package"
    packaged = fake_artifact(package / "any-model-name")
    (package / "__init__.py").write_text("")
    (package / "not-an-artifact").mkdir()
    monkeypatch.syspath_prepend(str(package.parent))
    monkeypatch.setattr(resolve, "MODEL_PACKAGE", "some_model_package")
    assert default_model_dir() == packaged  # whatever single artifact folder the package holds

    named = fake_artifact(nowhere / "mine")
    monkeypatch.setenv(ENV_VAR, str(named))
    assert default_model_dir() == named


def test_bad_variable_or_package_is_named(nowhere, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(nowhere / "missing"))
    with pytest.raises(FileNotFoundError, match=ENV_VAR):
        default_model_dir()
    monkeypatch.delenv(ENV_VAR)
    package = nowhere / "site" / "two_model_package"
    fake_artifact(package / "a")
    fake_artifact(package / "b")
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(package.parent))
    monkeypatch.setattr(resolve, "MODEL_PACKAGE", "two_model_package")
    with pytest.raises(FileNotFoundError, match="exactly one artifact folder, found \\['a', 'b'\\]"):
        default_model_dir()


def test_checkout_resolves_the_shipped_model():
    directory = resolve.checkout_model_dir()
    assert directory is not None and directory.parent == REPO / "models", f"models/{resolve.DEFAULT_MODEL_NAME} is missing"


# --------------------------------------------------------------------------- built wheels, fresh venv

OFFLINE_NO_TORCH = """
import importlib.abc, socket, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
def refuse(*args, **kwargs):
    raise OSError("network use is blocked in this test")
socket.socket.connect = socket.socket.connect_ex = refuse
"""


def run(command, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, command))} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """The two wheels built by scripts/build-wheels.sh, installed with the ner and default-model extras into a
    fresh venv outside the checkout; dependencies come from pip's configured indexes (the same pinned versions)."""
    root = tmp_path_factory.mktemp("packaging")
    wheels = root / "wheels"
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # `python` is this interpreter
    run(["bash", str(REPO / "scripts" / "build-wheels.sh"), str(wheels)], env={**os.environ, "PATH": path})
    built = sorted(p.name for p in wheels.glob("*.whl"))
    assert built == ["glirel_onnx-0.1.0-py3-none-any.whl", "glirel_onnx_default_model-0.1.0-py3-none-any.whl"], built
    venv = root / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
         "-c", str(REPO / "constraints.txt"), "--find-links", str(wheels), "glirel-onnx[default-model,ner]"])
    guard = root / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(OFFLINE_NO_TORCH)
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in (ENV_VAR, "PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PYTHONPATH=str(guard), HF_HUB_OFFLINE="1", PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}")
    return {"venv": venv, "cwd": elsewhere, "env": env}


def in_venv(installed, *command) -> subprocess.CompletedProcess:
    return run(list(command), cwd=installed["cwd"], env=installed["env"])


def test_wheel_venv_has_no_torch_and_finds_the_packaged_model(installed):
    probe = ("import importlib.metadata as m, json, glirel_runtime; from glirel_runtime.resolve import default_model_dir; "
             "print(json.dumps([glirel_runtime.__file__, str(default_model_dir()), "
             "[d for d in ('torch', 'transformers') if list(m.distributions(name=d))]]))")
    module, model, heavy = json.loads(in_venv(installed, str(installed["venv"] / "bin" / "python"), "-c", probe).stdout)
    site = str(installed["venv"])
    assert module.startswith(site) and not module.startswith(str(REPO)), module
    assert model.startswith(site) and f"/{MODEL_PACKAGE}/" in model, model
    assert heavy == [], "torch/transformers got installed with the runtime"


def test_wheel_extracts_from_raw_text_offline_without_torch(installed):
    result = in_venv(installed, "glirel-runtime", "extract", "--text", TEXT, "--providers", "cpu",
                     "--threshold", "0.0", "--top-k", "1")
    assert "entities: Apple (ORG), Steve Jobs (PERSON), Cupertino" in result.stdout, result.stdout + result.stderr
    relations = [line for line in result.stdout.splitlines() if "--[" in line and "]-->" in line]
    assert "  Apple --[founded by]--> Steve Jobs" in "\n".join(relations), result.stdout
    assert "relations in" in result.stderr


def test_wheel_extracts_with_given_entities(installed):
    result = in_venv(installed, "glirel-runtime", "extract", "--text", "Ada Lovelace was born in London .",
                     "--entities", "Ada Lovelace:PER", "London:LOC", "--labels", "place of birth", "spouse",
                     "--providers", "cpu", "--threshold", "0.0", "--top-k", "1")
    lines = sorted(line.split("  (")[0].strip() for line in result.stdout.splitlines() if "]-->" in line)
    assert len(lines) == 2 and lines[0].startswith("Ada Lovelace --[") and lines[1].startswith("London --["), result.stdout
