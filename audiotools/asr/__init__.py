"""Speech recognition: Whisper (openai-whisper's model and tokenizer) run by a batched engine.

File names follow openai-whisper's where the concern is the same (audio, decoding, timing,
transcribe), so the two can be read side by side.
"""
