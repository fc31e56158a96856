"""AES-256-CBC with PKCS#7 padding, as KIS encrypts execution notices: the one implementation
the client's decoder and the fake server share.

``cryptography`` (a compiled extension, about 7 MB resident) is imported when the first
:class:`CbcCipher` is made: a process that never meets a fill-notice key (a scheduler polling
for fills, a REST-only bot, a fake used only for REST) does not carry it.
"""

from __future__ import annotations

__all__ = ["CbcCipher"]

_BLOCK_BITS = 128


class CbcCipher:
    """AES-256-CBC with a 32-byte *key* and a 16-byte *iv*, PKCS#7 padded. Holds no state
    between calls (each call starts from *iv*)."""

    __slots__ = ("_cipher", "_padding")

    def __init__(self, key: bytes, iv: bytes) -> None:
        from cryptography.hazmat.primitives import padding  # noqa: PLC0415 - see the module doc
        from cryptography.hazmat.primitives.ciphers import (  # noqa: PLC0415
            Cipher,
            algorithms,
            modes,
        )

        self._cipher = Cipher(algorithms.AES(key), modes.CBC(iv))
        self._padding = padding.PKCS7(_BLOCK_BITS)

    def __repr__(self) -> str:
        return "CbcCipher(***)"  # never the key

    def encrypt(self, plain: bytes) -> bytes:
        """*plain*, padded and encrypted."""
        padder = self._padding.padder()
        padded = padder.update(plain) + padder.finalize()
        encryptor = self._cipher.encryptor()
        return encryptor.update(padded) + encryptor.finalize()

    def decrypt(self, data: bytes) -> bytes:
        """The inverse of :meth:`encrypt`; :class:`ValueError` when *data* is not a whole number
        of blocks or its padding is wrong."""
        decryptor = self._cipher.decryptor()
        padded = decryptor.update(data) + decryptor.finalize()
        unpadder = self._padding.unpadder()
        return unpadder.update(padded) + unpadder.finalize()
