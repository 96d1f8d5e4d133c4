"""The vector index: one Chroma record per person (their template), searched for 1:N. It holds nothing that
is not also in the records database, so it can always be rebuilt from it (``enroll rebuild-index``)."""
from __future__ import annotations

from collections.abc import Iterable
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
        """Up to ``n`` (person id, cosine similarity), best first. One round trip: no count() first (it costs
        time linear in the gallery, and Chroma returns fewer hits when it has fewer)."""
        got = self.collection.query(query_embeddings=[np.asarray(embedding, np.float32).tolist()],
                                    n_results=n, include=["distances"])
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

    @store_errors
    def rebuild(self, entries: Iterable[tuple[str, np.ndarray, str]]) -> None:
        """Replace the index by a fresh one holding exactly ``entries`` (person id, template, updated_at):
        Chroma only marks deleted vectors, so their bytes stay in its files until the collection is rebuilt.
        The new collection is filled beside the old one and renamed into place, so searches keep working
        and a crash leaves either index (the records are the truth; reconcile completes it)."""
        fresh_name = f"{self.name}-rebuild"
        if fresh_name in {getattr(c, "name", c) for c in self.client.list_collections()}:
            self.client.delete_collection(fresh_name)  # left by an interrupted rebuild
        fresh = model_collection(self.client, fresh_name, self.model_id, self.dim)
        batch: list[tuple[str, np.ndarray, str]] = []
        for entry in entries:
            batch.append(entry)
            if len(batch) == 1000:
                self._add(fresh, batch)
                batch = []
        self._add(fresh, batch)
        self.client.delete_collection(self.name)
        fresh.modify(name=self.name)
        self.collection = self.client.get_collection(self.name, embedding_function=None)

    @staticmethod
    def _add(collection: Any, batch: list[tuple[str, np.ndarray, str]]) -> None:
        if batch:
            collection.add(ids=[pid for pid, _, _ in batch],
                           embeddings=[np.asarray(v, np.float32).tolist() for _, v, _ in batch],
                           metadatas=[{"updated_at": stamp} for _, _, stamp in batch])
