"""Serving, one module per job: `decode` (request bodies -> volumes -> records), `batch` (a
batch of requests, each failing alone, one forward pass), `archive` (the TorchServe .mar),
`process` (start, stop, readiness), `client` (HTTP) and `handler` (TorchServe's entry point, a
thin adapter shipped inside the package and the .mar)."""
