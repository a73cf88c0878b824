"""Speaker embeddings, the voiceprint store, identification, verification and calibration."""
