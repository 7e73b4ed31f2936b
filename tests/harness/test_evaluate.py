"""evaluate(): corpus CER as before, and the per-document counts the report's document bootstrap resamples."""

import pytest
import torch
from conftest import WORDS, RenderedLines

from ocrbench.harness.evaluate import document_ids, evaluate
from ocrbench.harness.metrics import ErrorCounts, cer
from ocrbench.models import create_model

pytestmark = pytest.mark.usefixtures("one_thread")
HEIGHT = 32


class PagedLines(RenderedLines):
    """Rendered lines whose ``sample_meta`` names a document (``key``), or for ``missing`` lines nothing."""

    def __init__(self, key: str = "document", per_document: int = 3, missing: tuple = ()):
        super().__init__(WORDS, HEIGHT)
        self.key, self.per_document, self.missing = key, per_document, set(missing)

    def sample_meta(self, index: int) -> dict:
        return {"id": str(index)} if index in self.missing else {self.key: f"doc{index // self.per_document}"}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)  # untrained: its readings are wrong, so every document has errors to count
    return create_model("crnn_tiny", input_height=HEIGHT)


def test_document_errors_add_up_to_the_corpus_counts(model):
    dataset = PagedLines()
    result = evaluate(model, dataset, batch_size=2, device="cpu", num_examples=len(dataset))  # batches span pages
    docs = result.as_dict()["doc_errors"]
    assert sorted(docs) == ["doc0", "doc1", "doc2"]
    sums = [sum(d[k] for d in docs.values()) for k in range(4)]
    corpus = ErrorCounts().update([e["hyp"] for e in result.examples], [e["ref"] for e in result.examples])
    assert sums == corpus.as_list() and sums[1] == result.chars
    assert result.cer == cer([e["hyp"] for e in result.examples], [e["ref"] for e in result.examples])
    assert result.cer == sums[0] / sums[1]


def test_lines_are_grouped_by_document_then_page_and_otherwise_not_at_all():
    assert document_ids(PagedLines("page", per_document=4)) == ["doc0"] * 4 + ["doc1"] * 4
    assert document_ids(PagedLines("writer")) is None  # neither "document" nor "page"
    assert document_ids(PagedLines(missing=(5,))) is None  # counts over part of the corpus would mislead
    assert document_ids(RenderedLines()) is None  # no sample_meta


def test_a_dataset_without_documents_emits_no_doc_errors(model):
    result = evaluate(model, RenderedLines(WORDS[:3], HEIGHT), device="cpu")
    assert result.documents == {} and "doc_errors" not in result.as_dict()
