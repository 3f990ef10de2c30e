"""The lab's own PKI files under ``<state_dir>/pki/``.

::

    LabPKI.generate(state_dir)    a fresh lab PKI (public CAs, server certificate, org CAs, pins, bundles)
    LabPKI.load(state_dir)        the same paths, every file checked, or one clear BadFileError
    vendor_cas(profile)           the org CAs in a vendor profile's shape
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path

from harness.errors import BadFileError, EnvironmentProblem
from harness.model.pins import format_pins, parse_pins, spki_sha256
from harness.model.vendors import VendorProfile, parse_key
from harness.pki.ca import (
    CA,
    REGENERATE_HINT,
    SERVER_HOSTNAMES,
    Blob,
    check_key_pair,
    key_pem,
    load_certificate,
    load_certificates,
    load_private_key,
    new_key,
    read_file,
)
from harness.pki.export import onboarding_files
from harness.pki.hostile import server_sites
from harness.pki.names import display_name
from harness.pki.shapes import dn_mailboxes, parse_dn


def vendor_cas(vendor: VendorProfile, *, name_constraints: bool = True) -> tuple[CA, CA, CA]:
    """Fresh lab CAs in this product's shape: ``(root, signer, untrusted)``.

    ``root`` is what clients trust (deployed by IT), ``signer`` signs forged
    leaves (``root`` itself, or the last of the profile's intermediates, all sent
    along; ``signer.chain`` walks up to the root), each with the profile's DN,
    pathLen and lifetime (:meth:`VendorProfile.ca_names`), ``untrusted``
    signs copies of untrusted upstream certificates.  Generated names say
    nothing of the lab: a reviewer sees the product's names, as on a real
    network; name constraints keep them harmless (DESIGN.md section 7).
    """
    kind, size = parse_key(vendor.key)
    dns = vendor.ca_names()
    mailboxes = dn_mailboxes(dns)
    common = dict(key_type=kind, key_size=size, name_constraints=name_constraints,
                  permitted_mailboxes=mailboxes)
    # Without the product's pathLens, each intermediate allows exactly the CAs below it.
    path_lens = vendor.ca_path_lens or tuple(range(len(dns) - 2, -1, -1))
    ca = None
    for i, dn in enumerate(dns):
        # Lifetimes: the product's where a profile gives them, else the lab's (root ten years,
        # intermediates five); never past the parent's end (harness.pki.ca.validity).
        not_after = (datetime.now(timezone.utc) + timedelta(days=vendor.ca_days[i])) if vendor.ca_days else None
        ca = CA(name=parse_dn(dn), parent=ca, not_after=not_after,
                path_length=path_lens[i - 1] if i else None, **common)
    root, signer = ca.chain[-1], ca
    # The untrusted CA is never deployed, so its key size does not show: EC keeps start-up fast.
    untrusted = CA(common_name=vendor.untrusted_cn, organization=vendor.issuer_o, key_type="ec",
                   name_constraints=name_constraints, permitted_mailboxes=mailboxes)
    return root, signer, untrusted


@dataclass(frozen=True)
class LabPKI:
    """Paths of the lab's PKI files under ``<state_dir>/pki/`` (see :meth:`generate`)."""

    state_dir: Path
    public_root: Path
    public_intermediate: Path
    server_chain: Path
    server_key: Path
    server_backup_key: Path
    org_ca: Path
    org_ca_key: Path
    mitmproxy_confdir: Path
    untrusted_ca: Path
    untrusted_ca_key: Path
    trust_public: Path
    trust_public_org: Path
    pins_file: Path
    # An intermediate under the org root, for forged incomplete-chain certificates
    # (the vendor's own intermediate when it has one), and the hostile sites'
    # certificates (<case>.pem/.key, see harness.pki.hostile).
    org_sub_ca: Path | None = None
    org_sub_ca_key: Path | None = None
    sites_dir: Path | None = None

    @classmethod
    def at(cls, state_dir: str | os.PathLike) -> LabPKI:
        """The paths for ``state_dir``, without creating or checking anything."""
        state = Path(state_dir)
        d = state / "pki"
        return cls(state, d / "public-root.pem", d / "public-intermediate.pem", d / "server.pem",
                   d / "server.key", d / "server-backup.key", d / "org-ca.pem", d / "org-ca.key",
                   d / "mitmproxy", d / "untrusted-ca.pem", d / "untrusted-ca.key",
                   d / "trust-public.pem", d / "trust-public-org.pem", d / "pins.txt",
                   d / "org-sub-ca.pem", d / "org-sub-ca.key", d / "sites")

    @classmethod
    def generate(cls, state_dir: str | os.PathLike, *,
                 org_common_name: str = "Acme Corp TLS Inspection Root CA",
                 org_organization: str | None = "Acme Corp", org_key_type: str = "rsa",
                 name_constraints: bool = True,
                 server_hostnames: tuple[str, ...] = SERVER_HOSTNAMES,
                 vendor=None, hostile_sites: tuple[str, ...] = ()) -> LabPKI:
        """Generate a fresh lab PKI, replacing any previous one, and return its paths.

        ``name_constraints`` applies to the organisation's inspection CAs (org and
        untrusted), whose shape vendor profiles vary; the public CAs are always
        constrained.  ``vendor`` (a :class:`harness.model.vendors.VendorProfile`) replaces
        the org CAs by that product's names and chain shape: ``org-ca.pem`` is then
        its root, and ``mitmproxy-ca.pem`` its signing CA followed by the chain.
        ``hostile_sites`` names :data:`harness.pki.hostile.CASES` to issue for the mock
        server's extra ports.  Raises :class:`EnvironmentProblem` if the directory
        is not writable.
        """
        pki = cls.at(state_dir)
        # EC everywhere speed matters (the lab regenerates on each start); RSA
        # for the inspection CAs, as corporate roots mostly are (mitmproxy takes
        # EC CAs too: tests/lab/test_vendor_labs.py forges with one).
        public_o = "TLS-lab Public Trust (test only)"
        root = CA(common_name="Lab Public Root CA", organization=public_o, key_type="ec")
        inter = root.create_child_ca(common_name="Lab Public Intermediate CA",
                                     organization=public_o, key_type="ec")
        server = inter.issue_cert(*server_hostnames, private_key=new_key("ec", None))
        # A backup key that no server uses, pinned too (as HPKP recommends), so a
        # key rotation does not lock clients out.
        backup = new_key("ec", None)
        if vendor is not None:
            org, signer, untrusted = vendor_cas(vendor, name_constraints=name_constraints)
        else:
            org = signer = CA(common_name=org_common_name, organization=org_organization,
                              key_type=org_key_type, name_constraints=name_constraints)
            untrusted = CA(common_name="Acme Corp Untrusted Issuer CA",
                           organization=org_organization, name_constraints=name_constraints)
        # Forged incomplete chains leave an intermediate out: the vendor's own, or one made here (EC: fast).
        sub_ca = signer if signer is not org else org.create_child_ca(
            common_name=f"{org.common_name} Issuing CA", organization=org_organization,
            key_type="ec", name_constraints=name_constraints)
        pins = format_pins([server.spki_pin, spki_sha256(backup)],
                           "TLS-lab ScreenMeet pins: server key, then backup key (test only)")
        files = [
            (pki.public_root, root.cert_pem, False),
            (pki.public_root.with_suffix(".key"), root.private_key_pem, True),
            (pki.public_intermediate, inter.cert_pem, False),
            (pki.public_intermediate.with_suffix(".key"), inter.private_key_pem, True),
            (pki.server_chain, server.chain_pem(), False),
            (pki.server_key, server.private_key_pem, True),
            (pki.server_backup_key, key_pem(backup), True),
            (pki.org_ca, org.cert_pem, False),
            (pki.org_ca_key, org.private_key_pem, True),
            # The signing CA's key, its certificate, then its chain (served along; the root too,
            # as mitmproxy serves every certificate of the file).
            (pki.mitmproxy_confdir / "mitmproxy-ca.pem", signer.mitmproxy_pem(), True),
            # mitmproxy's onboarding page (http://mitm.it through the proxy) serves these: the root
            # clients must trust, in mitmproxy's own file names.
            *((pki.mitmproxy_confdir / name, blob, False) for name, blob in onboarding_files(org.cert).items()),
            (pki.untrusted_ca, untrusted.cert_pem, False),
            (pki.untrusted_ca_key, untrusted.private_key_pem, True),
            (pki.org_sub_ca, sub_ca.cert_pem, False),
            (pki.org_sub_ca_key, sub_ca.private_key_pem, True),
            (pki.trust_public, root.cert_pem, False),
            (pki.trust_public_org, Blob(root.cert_pem.bytes() + org.cert_pem.bytes()), False),
            (pki.pins_file, Blob(pins.encode()), False),  # last: its presence marks a full set
        ]
        try:
            if hostile_sites:
                for case, (chain, key) in server_sites(inter, server_hostnames, hostile_sites,
                                                          server_key=server.private_key).items():
                    files.insert(0, (pki.sites_dir / f"{case}.key", key, True))
                    files.insert(0, (pki.sites_dir / f"{case}.pem", chain, False))
            for d in (pki.public_root.parent, pki.mitmproxy_confdir, *([pki.sites_dir] if hostile_sites else [])):
                d.mkdir(mode=0o700, parents=True, exist_ok=True)
                d.chmod(0o700)  # mkdir's mode is subject to umask and ignored for existing dirs
            for path, blob, private in files:
                blob.write_to_path(path, private=private)
        except OSError as e:
            raise EnvironmentProblem(
                f"cannot write the lab PKI under {pki.public_root.parent} ({e.strerror or e}); "
                "choose a writable state directory.") from None
        return pki

    @classmethod
    def load(cls, state_dir: str | os.PathLike) -> LabPKI:
        """Return the paths of an existing lab PKI after checking every file parses.

        Raises :class:`BadFileError` (one sentence, saying to run ``harness pki``)
        when a file is missing or corrupt or a key does not match its certificate.
        """
        pki = cls.at(state_dir)
        if not pki.public_root.parent.is_dir():
            raise BadFileError(f"there is no lab PKI under {pki.state_dir}; {REGENERATE_HINT}.")
        for path in (pki.public_root, pki.public_intermediate, pki.untrusted_ca,
                     pki.trust_public, pki.trust_public_org):
            load_certificates(path)
        load_private_key(pki.server_backup_key)
        pairs = ((pki.server_chain, pki.server_key), (pki.org_ca, pki.org_ca_key),
                 (pki.mitmproxy_confdir / "mitmproxy-ca.pem",) * 2)
        for cert, key in pairs:
            check_key_pair(load_certificate(cert), load_private_key(key), cert, key)
        try:
            text = read_file(pki.pins_file, "pins file", REGENERATE_HINT)
            parse_pins(text.decode("utf-8", "replace"))
        except ValueError as e:
            raise BadFileError(
                f"pins file {pki.pins_file} is malformed ({e}); {REGENERATE_HINT}.") from None
        return pki

    @property
    def org_issuer_cn(self) -> str:
        """The common name of the CA that signs forged leaves, as clients will show it
        (the org root, or the vendor's intermediate: the first certificate mitmproxy signs with)."""
        signer = self.mitmproxy_confdir / "mitmproxy-ca.pem"
        return display_name(load_certificate(signer if signer.exists() else self.org_ca).subject)

    def describe(self) -> dict[str, str]:
        """Every path by field name, for the CLI and reports."""
        return {f.name: str(getattr(self, f.name)) for f in fields(self)}
