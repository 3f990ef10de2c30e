"""The lab's certificate authorities and certificates (cryptography)."""
