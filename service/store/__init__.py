"""Where persons and face vectors live. ``base.FaceStore`` is the seam; ``chroma`` (embedded or server) and
``memory`` implement it, and one contract test suite (tests/test_store_contract.py) runs against each."""
