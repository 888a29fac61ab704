"""The LightningModules of the zoo: CharRNN, Seq2Seq, Transformer, TransformerLM (public as zoo.<Name>)."""
