"""spaCy pipeline component: relations between `doc.ents`, written to `doc._.relations`.

The factory is registered as ``"glirel_onnx"`` (entry point ``spacy_factories``, and on
import of this module). It is not called ``"glirel"``: the PyTorch `glirel` package
registers that name itself when it is imported, and spaCy refuses (ValueError E004)
a second function under a registered name, so sharing it would break ``import glirel``
wherever both packages are installed. The config keys match glirel's component
(``model``, ``batch_size``, ``threshold``), so switching is a one-word change.

Labels (a list, or ``{label: {"allowed_head": [...], "allowed_tail": [...]}}``, also
wrapped as ``{"glirel_labels": {...}}``) come from, first to last:
``doc._.glirel_labels``; the ``"glirel_labels"`` key of the context given with
``nlp.pipe([(text, context)], as_tuples=True)`` (as with glirel); the component config.

Each relation in ``doc._.relations`` is a dict: ``head`` and ``tail`` (spaCy `Span`s
from ``doc.ents``), ``label``, ``score``, plus glirel's ``head_pos``/``tail_pos``
(token offsets, end-exclusive) and ``head_text``/``tail_text`` (token lists).

Example:
    >>> import spacy
    >>> nlp = spacy.blank("en")
    >>> ruler = nlp.add_pipe("entity_ruler")
    >>> ruler.add_patterns([{"label": "PER", "pattern": "Ada"}, {"label": "LOC", "pattern": "London"}])
    >>> nlp.add_pipe("glirel_onnx", config={"model": "models/glirel-minilm-fewrel",
    ...                                    "labels": ["place of birth"]})  # doctest: +SKIP
    >>> doc = nlp("Ada was born in London .")  # doctest: +SKIP
    >>> [(r["head"].text, r["label"], r["tail"].text) for r in doc._.relations]  # doctest: +SKIP
"""
from __future__ import annotations

import json
from typing import Any, Iterable, Iterator, Optional, Union

from spacy.language import Language
from spacy.pipeline import Pipe
from spacy.tokens import Doc, Span
from spacy.util import minibatch

from ..model import GLiREL, Relation
from ..validation import check_labels, check_threshold, check_top_k

FACTORY_NAME = "glirel_onnx"
LABELS_ATTR = "glirel_labels"
RELATIONS_ATTR = "relations"
DEFAULT_CONFIG: dict[str, Any] = {
    "model": None,
    "labels": None,
    "threshold": 0.3,
    "top_k": 1,
    "batch_size": 32,
    "providers": "auto",
    "threads": None,
}
"""glirel's spaCy component uses threshold 0.3 and top_k 1; so does this one."""


def _register_extensions() -> None:
    if not Doc.has_extension(RELATIONS_ATTR):
        Doc.set_extension(RELATIONS_ATTR, default=None)
    if not Doc.has_extension(LABELS_ATTR):
        Doc.set_extension(LABELS_ATTR, default=None)


class GLiRELComponent(Pipe):
    """Runs a `GLiREL` runtime model over each doc's entities; see the module docstring.

    Example:
        >>> component = GLiRELComponent(nlp, "glirel_onnx", model="artifact_dir", labels=["spouse"])  # doctest: +SKIP
        >>> doc = component(nlp("Ada met Byron ."))  # doctest: +SKIP
    """

    def __init__(
        self,
        nlp: Language,
        name: str = FACTORY_NAME,
        *,
        model: Optional[str] = None,
        labels: Any = None,
        threshold: float = 0.3,
        top_k: int = 1,
        batch_size: int = 32,
        providers: Union[str, list[Any]] = "auto",
        threads: Optional[int] = None,
    ):
        _register_extensions()
        self.name = name
        self.labels_config = labels
        if labels is not None:
            check_labels(labels)  # fail at pipeline construction, not on the first doc
        self.threshold = check_threshold(threshold)
        self.top_k = check_top_k(top_k)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"{name}: batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = batch_size
        self.model = GLiREL.from_pretrained(model, providers=providers, threads=threads)

    def __call__(self, doc: Doc) -> Doc:
        """Annotate one doc (`nlp(text)`); a doc with fewer than two entities gets no relations."""
        failures = self._annotate([doc])
        if failures:
            raise failures[0][1]
        return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        """Annotate docs in batches of `batch_size` (from `nlp.pipe`); the model runs in batches of the config's `batch_size`.

        A doc the model cannot take goes to spaCy's error handler (`nlp.set_error_handler`; the
        default raises) on its own; the other docs of the batch keep their relations.
        """
        error_handler = self.get_error_handler()
        for docs in minibatch(stream, size=batch_size):
            try:
                failures = self._annotate(docs)
            except Exception as error:  # spaCy's error-handler protocol (nlp.set_error_handler)
                error_handler(self.name, self, docs, error)
            else:
                for doc, error in failures:
                    error_handler(self.name, self, [doc], error)
            yield from docs

    # ----------------------------------------------------------------- internals

    def _labels_for(self, doc: Doc) -> Any:
        labels = doc._.get(LABELS_ATTR)
        if labels is None:
            context = getattr(doc, "_context", None)
            if isinstance(context, dict):
                labels = context.get(LABELS_ATTR)
        if labels is None:
            labels = self.labels_config
        if labels is None:
            raise ValueError(
                f"{self.name}: no relation labels for this doc: set them in the component config "
                f"(config={{'labels': [...]}}), on the doc (doc._.{LABELS_ATTR} = [...]), or as context "
                f"(nlp.pipe([(text, {{'{LABELS_ATTR}': [...]}})], as_tuples=True))"
            )
        return labels

    def _annotate(self, docs: list[Doc]) -> list[tuple[Doc, Exception]]:
        """Set `doc._.relations` on each doc; returns the docs the model refused, with their errors."""
        groups: dict[str, tuple[Any, list[Doc]]] = {}
        for doc in docs:  # docs sharing a label set run together
            labels = self._labels_for(doc)
            if len(doc.ents) < 2:  # an empty doc, or one entity: no pair, no relation
                doc._.set(RELATIONS_ATTR, [])
                continue
            key = json.dumps(labels, sort_keys=False, default=list)
            groups.setdefault(key, (labels, []))[1].append(doc)
        failures: list[tuple[Doc, Exception]] = []
        for labels, group in groups.values():
            texts = [[token.text for token in doc] for doc in group]
            ner = [[[ent.start, ent.end - 1, ent.label_, ent.text] for ent in doc.ents] for doc in group]
            results = self.model.batch_predict_relations(
                texts, labels, threshold=self.threshold, ner=ner, top_k=self.top_k, batch_size=self.batch_size,
                on_error="return")
            for doc, relations in zip(group, results):
                if isinstance(relations, Exception):
                    doc._.set(RELATIONS_ATTR, [])
                    failures.append((doc, ValueError(f"{self.name}: doc {doc.text[:60]!r}: "
                                                     + "; ".join(getattr(relations, "errors", {0: str(relations)}).values()))))
                    continue
                entities = {(ent.start, ent.end): ent for ent in doc.ents}
                doc._.set(RELATIONS_ATTR, [_with_spans(relation, entities) for relation in relations])
        return failures


def _with_spans(relation: Relation, entities: dict[tuple[int, int], Span]) -> dict[str, Any]:
    head, tail = entities[tuple(relation["head_pos"])], entities[tuple(relation["tail_pos"])]
    return {"head": head, "tail": tail, "label": relation["label"], "score": relation["score"],
            "head_pos": relation["head_pos"], "tail_pos": relation["tail_pos"],
            "head_text": relation["head_text"], "tail_text": relation["tail_text"]}


@Language.factory(FACTORY_NAME, assigns=[f"doc._.{RELATIONS_ATTR}"], requires=["doc.ents"], default_config=DEFAULT_CONFIG)
def make_glirel_component(
    nlp: Language, name: str, model: Optional[str], labels: Any, threshold: float, top_k: int,
    batch_size: int, providers: Union[str, list[Any]], threads: Optional[int],
) -> GLiRELComponent:
    """spaCy factory: ``nlp.add_pipe("glirel_onnx", config={"model": ARTIFACT_DIR, "labels": [...]})``."""
    return GLiRELComponent(nlp, name, model=model, labels=labels, threshold=threshold, top_k=top_k,
                           batch_size=batch_size, providers=providers, threads=threads)

