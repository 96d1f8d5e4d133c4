"""The vector index: one Chroma record per person (their template), searched for 1:N. It holds nothing that
is not also in the records database, so it can always be rebuilt from it (``enroll rebuild-index``)."""
from __future__ import annotations

from typing import Any

import numpy as np

from .chroma_client import model_collection, safe_name, store_errors


class PersonIndex:
    def __init__(self, client: Any, model_id: str, dim: int) -> None:
        self.client, self.model_id, self.dim = client, model_id, dim
        self.name = f"index-{safe_name(model_id)}"
        self.collection = model_collection(client, self.name, model_id, dim)

    @store_errors
    def heartbeat(self) -> bool:
        self.collection.count()
        return True

    @store_errors
    def upsert(self, person_id: str, template: np.ndarray, stamp: str) -> None:
        """``stamp`` is the record's ``updated_at``: reconciliation finds stale templates by it."""
        self.collection.upsert(ids=[person_id], embeddings=[np.asarray(template, np.float32).tolist()],
                               metadatas=[{"updated_at": stamp}])

    @store_errors
    def delete(self, person_ids: list[str]) -> None:
        if person_ids:
            self.collection.delete(ids=person_ids)

    @store_errors
    def query(self, embedding: np.ndarray, n: int) -> list[tuple[str, float]]:
        """Up to ``n`` (person id, cosine similarity), best first."""
        total = self.collection.count()
        if total == 0:
            return []
        got = self.collection.query(query_embeddings=[np.asarray(embedding, np.float32).tolist()],
                                    n_results=min(n, total), include=["distances"])
        return [(pid, 1.0 - float(d)) for pid, d in zip(got["ids"][0], got["distances"][0], strict=True)]

    @store_errors
    def stamps(self) -> dict[str, str]:
        """{person id: updated_at} of every indexed person, read in pages."""
        out: dict[str, str] = {}
        offset = 0
        while True:
            got = self.collection.get(limit=5000, offset=offset, include=["metadatas"])
            if not got["ids"]:
                return out
            for pid, meta in zip(got["ids"], got["metadatas"], strict=True):
                out[pid] = str((meta or {}).get("updated_at", ""))
            offset += len(got["ids"])

    @store_errors
    def drop(self) -> None:
        self.client.delete_collection(self.name)

    def rebuilt(self) -> PersonIndex:
        """An empty index in place of this one (its HNSW files are deleted with the collection), to be
        filled from the records by ``RecordsStore.reconcile``."""
        self.drop()
        return PersonIndex(self.client, self.model_id, self.dim)
