"""Deployment artefacts: Dockerfile, k8s manifests, protos' compatibility, README operations."""
