"""Voice activity detection: where the speech is."""
