"""Building blocks the models are made of: RNN attention, multi-head attention, positional encodings, Transformer layers, learning-rate schedules."""
