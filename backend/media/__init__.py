"""Image bytes: safe decoding, the content-addressed blob store, upload sanitising and the large-decode slots."""

# The decode limits of the last app created, (max MB, concurrent decodes, slot folder): imaging.py applies them when
# it is imported (numpy and Pillow are not imported before a command needs them), create_app also when it already is.
DECODE_LIMITS: tuple | None = None
