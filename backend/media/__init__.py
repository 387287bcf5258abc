"""Image bytes: safe decoding, the content-addressed blob store, upload sanitising and the large-decode slots."""
