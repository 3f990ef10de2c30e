"""The organisation's root CA in every format a device installs, and mitmproxy's onboarding files.

::

    install_files(cert, password=b"")   {file name: Blob}: PEM, DER (.cer, .crt), PKCS#12, Apple profile
    install_guide(cert)                 INSTALL.md: the commands for Windows, macOS, Debian/Ubuntu,
                                        Android and Firefox
    export_ca(cert, directory, ...)     writes both (what ``harness pki export DIR`` does)
    onboarding_files(cert)              mitmproxy-ca-cert.pem/.cer/.p12, which mitmproxy's onboarding
                                        page (http://mitm.it through the proxy) serves from its confdir

Only the certificate ever leaves: every format here is built from an
:class:`x509.Certificate`, never from a key, so no export can carry one.  The
certificate is the one clients must trust: the org root (a vendor lab's root,
not its issuing intermediate).
"""

from __future__ import annotations

import os
import plistlib
import re
import uuid
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from harness.pki.ca import Blob
from harness.pki.names import display_name

BASENAME = "org-ca"
# mitmproxy's onboarding app reads <confdir>/mitmproxy-ca-cert.<ext> (onboardingapp.read_cert).
ONBOARDING_BASENAME = "mitmproxy-ca-cert"
# Apple profile identifiers: reverse DNS, under a name that says what made them.
PROFILE_ID = "test.lab.tls-inspection.org-ca"


def common_name(cert: x509.Certificate) -> str:
    """The certificate's CN (its whole subject when it has none), as the install commands name it."""
    cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else display_name(cert.subject)


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def p12(cert: x509.Certificate, password: bytes = b"") -> bytes:
    """A PKCS#12 bag with the certificate only (no key), under ``password`` (empty: none).

    With a password, the bag uses PBES1 3DES and an HMAC-SHA1 MAC, not cryptography's
    ``BestAvailableEncryption`` (AES-256/PBKDF2): Windows before Server 2019, macOS
    Keychain Access and Android's certificate installer reject the newer algorithms.
    """
    if password:
        encryption = (serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(50000)
                      .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
                      .hmac_hash(hashes.SHA1()).build(password))
    else:
        encryption = serialization.NoEncryption()
    return pkcs12.serialize_key_and_certificates(common_name(cert).encode(), None, cert, None, encryption)


def mobileconfig(cert: x509.Certificate) -> bytes:
    """An Apple configuration profile with one root-certificate payload (``com.apple.security.root``).

    The UUIDs derive from the certificate's fingerprint, so exporting the same CA
    twice gives the same profile (a device replaces it instead of listing two).
    """
    fingerprint = cert.fingerprint(hashes.SHA256()).hex()
    name = common_name(cert)

    def stable_uuid(role: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:{PROFILE_ID}:{fingerprint}:{role}")).upper()

    payload = {
        "PayloadCertificateFileName": f"{BASENAME}.cer",
        "PayloadContent": der(cert),
        "PayloadDescription": "Adds the TLS-inspection lab's organisation root CA (test only).",
        "PayloadDisplayName": name,
        "PayloadIdentifier": f"{PROFILE_ID}.{fingerprint[:16]}.certificate",
        "PayloadType": "com.apple.security.root",
        "PayloadUUID": stable_uuid("certificate"),
        "PayloadVersion": 1,
    }
    profile = {
        "PayloadContent": [payload],
        "PayloadDescription": f"Trust {name}, the inspection CA of a TLS-inspection lab. Remove it after testing.",
        "PayloadDisplayName": f"{name} (TLS-inspection lab)",
        "PayloadIdentifier": f"{PROFILE_ID}.{fingerprint[:16]}",
        "PayloadRemovalDisallowed": False,
        "PayloadType": "Configuration",
        "PayloadUUID": stable_uuid("profile"),
        "PayloadVersion": 1,
    }
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML)


def install_files(cert: x509.Certificate, password: bytes = b"") -> dict[str, Blob]:
    """Every install format of ``cert`` by file name (``org-ca.pem``, ``.cer``, ``.crt``, ``.p12``,
    ``.mobileconfig``).  ``.cer`` and ``.crt`` are DER: what Windows and Android expect."""
    return {
        f"{BASENAME}.pem": Blob(pem(cert)),
        f"{BASENAME}.cer": Blob(der(cert)),
        f"{BASENAME}.crt": Blob(der(cert)),
        f"{BASENAME}.p12": Blob(p12(cert, password)),
        f"{BASENAME}.mobileconfig": Blob(mobileconfig(cert)),
    }


def onboarding_files(cert: x509.Certificate) -> dict[str, Blob]:
    """The files mitmproxy's onboarding page serves (``/cert/pem``, ``/cert/cer``, ``/cert/p12``),
    for ``cert``.  mitmproxy only writes them when it makes its own CA; the lab brings its own,
    so without these http://mitm.it answers 500.  As mitmproxy does, ``.cer`` holds PEM (Android's
    installer and Windows take either) and the ``.p12`` has no password."""
    return {f"{ONBOARDING_BASENAME}.pem": Blob(pem(cert)),
            f"{ONBOARDING_BASENAME}.cer": Blob(pem(cert)),
            f"{ONBOARDING_BASENAME}.p12": Blob(p12(cert))}


def write_onboarding(cert: x509.Certificate, confdir: str | os.PathLike) -> None:
    """Write :func:`onboarding_files` into mitmproxy's ``confdir`` (public files, 0644)."""
    for name, blob in onboarding_files(cert).items():
        blob.write_to_path(Path(confdir) / name)


def _slug(name: str) -> str:
    """A file-name-safe form of a CA name (Debian's ca-certificates wants ``NAME.crt``)."""
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower() or BASENAME


def install_guide(cert: x509.Certificate, *, password_set: bool = False) -> str:
    """INSTALL.md: one page with the commands to install (and remove) ``cert`` as a trusted root on
    Windows, macOS, Debian/Ubuntu, Android and Firefox, for the files :func:`install_files` names."""
    name = common_name(cert)
    sha256 = cert.fingerprint(hashes.SHA256()).hex(":").upper()
    sha1 = cert.fingerprint(hashes.SHA1()).hex(":").upper()
    slug = _slug(name)
    p12_note = ("the password given to `harness pki export`" if password_set
                else "no password: press Enter when asked")
    return f"""# Installing the lab's organisation CA

**{name}** is the root CA a TLS-inspection lab forges certificates with. Installing it
makes a device trust the lab's proxy the way a managed company laptop trusts its
inspection product. It is a test CA, name-constrained to the lab's names (unless the
lab was started with `--no-name-constraints`): remove it when you are done.

Check the fingerprint before you trust it:

    SHA-256 {sha256}
    SHA-1   {sha1}

| file | format | for |
| --- | --- | --- |
| `{BASENAME}.pem` | PEM | macOS `security`, Debian/Ubuntu, Firefox, curl/OpenSSL |
| `{BASENAME}.cer`, `{BASENAME}.crt` | DER | Windows, Android |
| `{BASENAME}.p12` | PKCS#12, certificate only ({p12_note}) | Windows/Android import dialogs |
| `{BASENAME}.mobileconfig` | Apple configuration profile (root certificate payload) | macOS, iOS/iPadOS |

## Windows (administrator prompt)

    certutil -addstore -f Root {BASENAME}.cer
    certutil -delstore Root "{name}"                 # remove

For the current user only: `certutil -user -addstore Root {BASENAME}.cer`.

## macOS

    sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {BASENAME}.pem
    sudo security delete-certificate -c "{name}" /Library/Keychains/System.keychain   # remove

Or open `{BASENAME}.mobileconfig`, install it in System Settings > Privacy & Security >
Profiles. On iOS/iPadOS, after installing the profile, turn on full trust in Settings >
General > About > Certificate Trust Settings.

## Debian / Ubuntu

    sudo cp {BASENAME}.pem /usr/local/share/ca-certificates/{slug}.crt
    sudo update-ca-certificates
    # remove: sudo rm /usr/local/share/ca-certificates/{slug}.crt && sudo update-ca-certificates --fresh

(`update-ca-certificates` reads PEM files named `*.crt`: copy the `.pem`, not the DER `.crt`.)

## Android (user CA)

    adb push {BASENAME}.crt /sdcard/Download/

Then Settings > Security > Encryption & credentials > Install a certificate > CA certificate,
and pick `{BASENAME}.crt`. Apps targeting Android 7 (API 24) or later trust user CAs only when
their network security configuration says so: such an app meets the lab's forged certificate
as untrusted, whatever its pins.

## Firefox

Firefox keeps its own store. Settings > Privacy & Security > Certificates > View Certificates >
Authorities > Import, choose `{BASENAME}.pem`, tick "Trust this CA to identify websites". Or with
NSS's certutil (package libnss3-tools), for a profile directory PROFILE:

    certutil -A -d sql:PROFILE -n "{name}" -t "C,," -i {BASENAME}.pem
    certutil -D -d sql:PROFILE -n "{name}"          # remove

Alternatively set `security.enterprise_roots.enabled` to `true` in `about:config` so Firefox
uses the roots installed in the operating system (Windows, macOS).
"""


def export_ca(cert: x509.Certificate, directory: str | os.PathLike, *, password: bytes = b"") -> list[Path]:
    """Write every install format of ``cert`` and ``INSTALL.md`` into ``directory`` (created if
    missing; files there of the same names are replaced); the paths written."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    files = install_files(cert, password) | {"INSTALL.md": Blob(install_guide(cert, password_set=bool(password)).encode())}
    return [blob.write_to_path(d / name) for name, blob in files.items()]
