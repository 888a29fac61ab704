"""Models leaving the zoo: export to Hugging Face transformers and CTranslate2, and decoding with them."""
