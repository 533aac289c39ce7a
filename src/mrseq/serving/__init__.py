"""Serving, one module per job: `decode` (request bodies -> volumes -> records), `archive`
(the TorchServe .mar), `process` (start, stop, readiness), `client` (HTTP), and `handler`
(TorchServe's entry point, a thin adapter shipped inside the package and the .mar)."""
