"""Speaker diarisation: who spoke when."""
