"""Decoding written once for every model: the protocol and DecodingMixin, beam search, greedy and sampling, and the nested-state helpers."""
