"""Provenance: hashes that tie a transcript to its audio and models, and Ed25519 signatures."""
