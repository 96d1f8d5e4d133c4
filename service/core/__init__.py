"""Use-cases and rules of the identity service. Nothing here imports Flask, a database driver, chromadb,
torch or OpenCV (a test asserts it): the core talks to the detector, the embedder and the store through the
protocols in ``ports``, so each can be replaced, and the rules can be tested on an in-memory store."""
