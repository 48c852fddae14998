"""Corpus-preparation stages: subtitles, audio, alignment, phonemes, faces, features."""
