"""Transcript writers: JSON, SRT, VTT, TXT, TSV and RTTM."""

from audiotools.export.writers import FORMATS, to_rttm, to_srt, to_tsv, to_txt, to_vtt, write_outputs

__all__ = ["FORMATS", "to_rttm", "to_srt", "to_tsv", "to_txt", "to_vtt", "write_outputs"]
