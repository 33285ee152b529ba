"""Executors: where the steps of a pipeline run (local process, containers, Argo, ...)."""
