"""The lab's certificates, built with ``cryptography``.

* :mod:`harness.pki.ca`      – CA(), issue_cert(), PEM blobs, loading certificate and key files
* :mod:`harness.pki.constraints` – the name constraints every lab CA carries (what it may sign for)
* :mod:`harness.pki.names`   – a certificate's name as people are shown it
* :mod:`harness.pki.hostile` – the badssl-style hostile certificates
* :mod:`harness.pki.lab`     – the lab's PKI files (LabPKI) and vendor-shaped org CAs
"""
