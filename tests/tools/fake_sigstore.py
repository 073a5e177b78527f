#!/usr/bin/env python3
"""A stand-in for Sigstore's public services, for tests that need keyless
signatures made now over bytes the test just built (an image manifest's
digest): a Fulcio CA that issues short-lived code-signing certificates with
an embedded SCT from a CT log of its own, and a Rekor log that records
entries (SET, and for bundles a one-leaf inclusion proof and a signed
checkpoint). Everything a verifier needs to trust it is written to
trusted_root.json, in the shape of Sigstore's TUF target.

It exists because no keyless signature of an image this test builds can be
obtained from the real Fulcio and Rekor offline; the verifier under test
(sigstore-verify, through airlock) is the real one and is given only the
trusted root, never these keys.

    fake_sigstore.py root DIR
        writes DIR/trusted_root.json and the services' private keys (DIR/*.key)
    fake_sigstore.py cosign DIR PAYLOAD --san SAN --issuer URL
        signs PAYLOAD (a simple-signing document) as `cosign sign` does with
        a Fulcio certificate: prints JSON {signature, certificate, chain,
        bundle}, the four layer annotations' values
    fake_sigstore.py bundle DIR STATEMENT --san SAN --issuer URL
        signs STATEMENT (an in-toto statement) into a DSSE envelope and prints
        a Sigstore bundle v0.3 with a dsse 0.0.1 Rekor entry
    fake_sigstore.py bundle DIR STATEMENT --key KEY
        the same, signed with the private key KEY (PEM) as `cosign sign
        --key` does: the bundle names the key by a hint, not a certificate
    fake_sigstore.py attest DIR STATEMENT --san SAN --issuer URL
        signs STATEMENT into a DSSE envelope as `cosign attest` did before
        the bundle format: prints JSON {envelope, certificate, chain,
        bundle}, the `.att` layer and its annotations, Rekor's record being
        an intoto 0.0.2 entry
    fake_sigstore.py keygen PATH
        writes an ECDSA P-256 key pair, PATH.key and PATH.pub (PEM), as
        `cosign generate-key-pair` would without a password

Needs the `cryptography` package (in the venv .ci/run makes).
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import struct
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

FULCIO_ISSUER_V1 = "1.3.6.1.4.1.57264.1.1"
FULCIO_ISSUER_V2 = "1.3.6.1.4.1.57264.1.8"
SCT_LIST = "1.3.6.1.4.1.11129.2.4.2"
ORIGIN = "rekor.fake.test - 1193050959916656506"


def b64(data):
    return base64.b64encode(data).decode()


def spki(key):
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def new_key(path, curve=ec.SECP256R1):
    key = ec.generate_private_key(curve())
    with open(path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return key


def load_key(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), None)


def der_length(n):
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def der(tag, body):
    return bytes([tag]) + der_length(len(body)) + body


def key_usage(certificates):
    """A CA's (signs certificates) or a signing certificate's key usage."""
    return x509.KeyUsage(
        digital_signature=not certificates,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=certificates,
        crl_sign=certificates,
        encipher_only=False,
        decipher_only=False,
    )


def sign(key, data):
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def log_entry(public, start):
    return {
        "baseUrl": "https://fake.test",
        "hashAlgorithm": "SHA2_256",
        "publicKey": {
            "rawBytes": b64(public),
            "keyDetails": "PKIX_ECDSA_P256_SHA_256",
            "validFor": {"start": start},
        },
        "logId": {"keyId": b64(hashlib.sha256(public).digest())},
    }


def root(directory):
    os.makedirs(directory, exist_ok=True)
    ca = new_key(os.path.join(directory, "fulcio.key"), ec.SECP384R1)
    ct = new_key(os.path.join(directory, "ctlog.key"))
    rekor = new_key(os.path.join(directory, "rekor.key"))
    now = datetime.datetime.now(datetime.timezone.utc)
    start = now - datetime.timedelta(days=1)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fake.test"),
            x509.NameAttribute(NameOID.COMMON_NAME, "fake fulcio"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ca.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(
            key_usage(certificates=True),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca.public_key()), critical=False)
        .sign(ca, hashes.SHA384())
    )
    with open(os.path.join(directory, "fulcio.pem"), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    stamp = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    trusted = {
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [log_entry(spki(rekor), stamp)],
        "certificateAuthorities": [
            {
                "subject": {"organization": "fake.test", "commonName": "fake fulcio"},
                "uri": "https://fulcio.fake.test",
                "certChain": {"certificates": [{"rawBytes": b64(cert.public_bytes(serialization.Encoding.DER))}]},
                "validFor": {"start": stamp},
            }
        ],
        "ctlogs": [log_entry(spki(ct), stamp)],
        "timestampAuthorities": [],
    }
    with open(os.path.join(directory, "trusted_root.json"), "w") as f:
        json.dump(trusted, f, indent=2)


def certificate(directory, san, issuer):
    """A Fulcio-like leaf for a fresh key, with an SCT from the fake CT log."""
    ca = load_key(os.path.join(directory, "fulcio.key"))
    ct = load_key(os.path.join(directory, "ctlog.key"))
    with open(os.path.join(directory, "fulcio.pem"), "rb") as f:
        ca_cert = x509.load_pem_x509_certificate(f.read())
    leaf = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) - datetime.timedelta(seconds=30)
    if "://" in san:
        general = x509.UniformResourceIdentifier(san)
    else:
        general = x509.RFC822Name(san)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca_cert.subject)
        .public_key(leaf.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(minutes=10))
        .add_extension(
            key_usage(certificates=False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key()), critical=False)
        .add_extension(x509.SubjectAlternativeName([general]), critical=True)
        .add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier(FULCIO_ISSUER_V1), issuer.encode()), critical=False
        )
        .add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier(FULCIO_ISSUER_V2), der(0x0C, issuer.encode())),
            critical=False,
        )
    )
    # The precertificate's TBS is the final one without the SCT list, which
    # goes last; DER is canonical, so a verifier that drops the extension and
    # re-encodes gets these bytes back.
    precert = builder.sign(ca, hashes.SHA384())
    timestamp = int(now.timestamp() * 1000) + 1000
    tbs = precert.tbs_certificate_bytes
    issuer_key_hash = hashlib.sha256(spki(ca)).digest()
    signed = (
        bytes([0, 0])  # v1, certificate_timestamp
        + struct.pack(">Q", timestamp)
        + struct.pack(">H", 1)  # precert_entry
        + issuer_key_hash
        + struct.pack(">I", len(tbs))[1:]
        + tbs
        + struct.pack(">H", 0)  # no extensions
    )
    sct_signature = sign(ct, signed)
    sct = (
        bytes([0])
        + hashlib.sha256(spki(ct)).digest()
        + struct.pack(">Q", timestamp)
        + struct.pack(">H", 0)
        + bytes([4, 3])  # sha256, ecdsa
        + struct.pack(">H", len(sct_signature))
        + sct_signature
    )
    listed = struct.pack(">H", len(sct)) + sct
    sct_list = struct.pack(">H", len(listed)) + listed
    cert = builder.add_extension(
        x509.UnrecognizedExtension(x509.ObjectIdentifier(SCT_LIST), der(0x04, sct_list)), critical=False
    ).sign(ca, hashes.SHA384())
    return leaf, cert, ca_cert


def rekor_entry(directory, body, proof):
    """The log's record of `body` (bytes of its canonical JSON): index, time, SET, and a one-leaf proof."""
    rekor = load_key(os.path.join(directory, "rekor.key"))
    log_id = hashlib.sha256(spki(rekor)).digest()
    integrated = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    index = 0
    payload = {"body": b64(body), "integratedTime": integrated, "logID": log_id.hex(), "logIndex": index}
    set_bytes = sign(rekor, json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())
    entry = {
        "logIndex": str(index),
        "logId": {"keyId": b64(log_id)},
        "integratedTime": str(integrated),
        "inclusionPromise": {"signedEntryTimestamp": b64(set_bytes)},
        "canonicalizedBody": b64(body),
    }
    if proof:
        root_hash = hashlib.sha256(b"\x00" + body).digest()
        note = f"{ORIGIN}\n1\n{b64(root_hash)}\n"
        hint = hashlib.sha256(spki(rekor)).digest()[:4]
        checkpoint = f"{note}\n\u2014 rekor.fake.test {b64(hint + sign(rekor, note.encode()))}\n"
        entry["inclusionProof"] = {
            "logIndex": str(index),
            "rootHash": b64(root_hash),
            "treeSize": "1",
            "hashes": [],
            "checkpoint": {"envelope": checkpoint},
        }
    return entry, payload


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def cosign(directory, payload_path, san, issuer):
    with open(payload_path, "rb") as f:
        payload = f.read()
    leaf, cert, ca_cert = certificate(directory, san, issuer)
    signature = sign(leaf, payload)
    body = canonical(
        {
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()}},
                "signature": {"content": b64(signature), "publicKey": {"content": b64(pem(cert))}},
            },
        }
    )
    entry, set_payload = rekor_entry(directory, body, proof=False)
    bundle = {
        "SignedEntryTimestamp": entry["inclusionPromise"]["signedEntryTimestamp"],
        "Payload": {
            "body": set_payload["body"],
            "integratedTime": set_payload["integratedTime"],
            "logIndex": set_payload["logIndex"],
            "logID": set_payload["logID"],
        },
    }
    json.dump(
        {
            "signature": b64(signature),
            "certificate": pem(cert).decode(),
            "chain": pem(ca_cert).decode(),
            "bundle": json.dumps(bundle, separators=(",", ":")),
        },
        sys.stdout,
    )


def dsse_bundle(directory, statement_path, san, issuer, key_path):
    with open(statement_path, "rb") as f:
        statement = f.read()
    kind = "application/vnd.in-toto+json"
    if key_path:
        signer = load_key(key_path)
        public_pem = signer.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        verifier = b64(public_pem)
        material = {"publicKey": {"hint": b64(hashlib.sha256(spki(signer)).digest())}}
    else:
        signer, cert, _ = certificate(directory, san, issuer)
        verifier = b64(pem(cert))
        material = {"certificate": {"rawBytes": b64(cert.public_bytes(serialization.Encoding.DER))}}
    pae = b"DSSEv1 %d %s %d %s" % (len(kind), kind.encode(), len(statement), statement)
    signature = sign(signer, pae)
    envelope = {"payload": b64(statement), "payloadType": kind, "signatures": [{"sig": b64(signature)}]}
    body = canonical(
        {
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {
                "envelopeHash": {"algorithm": "sha256", "value": hashlib.sha256(canonical(envelope)).hexdigest()},
                "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(statement).hexdigest()},
                "signatures": [{"signature": b64(signature), "verifier": verifier}],
            },
        }
    )
    entry, _ = rekor_entry(directory, body, proof=True)
    entry["kindVersion"] = {"kind": "dsse", "version": "0.0.1"}
    material["tlogEntries"] = [entry]
    bundle = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": material,
        "dsseEnvelope": envelope,
    }
    json.dump(bundle, sys.stdout)


def attest(directory, statement_path, san, issuer):
    with open(statement_path, "rb") as f:
        statement = f.read()
    kind = "application/vnd.in-toto+json"
    leaf, cert, ca_cert = certificate(directory, san, issuer)
    pae = b"DSSEv1 %d %s %d %s" % (len(kind), kind.encode(), len(statement), statement)
    signature = sign(leaf, pae)
    envelope = json.dumps(
        {"payloadType": kind, "payload": b64(statement), "signatures": [{"keyid": "", "sig": b64(signature)}]},
        separators=(",", ":"),
    ).encode()
    # intoto 0.0.2 keeps the signature base64-encoded twice, as Rekor does.
    body = canonical(
        {
            "apiVersion": "0.0.2",
            "kind": "intoto",
            "spec": {
                "content": {
                    "envelope": {
                        "payloadType": kind,
                        "signatures": [{"publicKey": b64(pem(cert)), "sig": b64(b64(signature).encode())}],
                    },
                    "hash": {"algorithm": "sha256", "value": hashlib.sha256(envelope).hexdigest()},
                    "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(statement).hexdigest()},
                }
            },
        }
    )
    entry, set_payload = rekor_entry(directory, body, proof=False)
    record = {
        "SignedEntryTimestamp": entry["inclusionPromise"]["signedEntryTimestamp"],
        "Payload": {k: set_payload[k] for k in ("body", "integratedTime", "logIndex", "logID")},
    }
    json.dump(
        {
            "envelope": envelope.decode(),
            "certificate": pem(cert).decode(),
            "chain": pem(ca_cert).decode(),
            "bundle": json.dumps(record, separators=(",", ":")),
        },
        sys.stdout,
    )


def keygen(path):
    key = new_key(path + ".key")
    with open(path + ".pub", "wb") as f:
        f.write(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("root").add_argument("dir")
    sub.add_parser("keygen").add_argument("path")
    for name in ("cosign", "bundle", "attest"):
        p = sub.add_parser(name)
        p.add_argument("dir")
        p.add_argument("input")
        p.add_argument("--san")
        p.add_argument("--issuer")
        if name == "bundle":
            p.add_argument("--key")
    args = parser.parse_args()
    if args.command in ("cosign", "bundle", "attest") and not getattr(args, "key", None) and not (args.san and args.issuer):
        parser.error("--san and --issuer (or, for bundle, --key) are required")
    if args.command == "root":
        root(args.dir)
    elif args.command == "keygen":
        keygen(args.path)
    elif args.command == "cosign":
        cosign(args.dir, args.input, args.san, args.issuer)
    elif args.command == "attest":
        attest(args.dir, args.input, args.san, args.issuer)
    else:
        dsse_bundle(args.dir, args.input, args.san, args.issuer, args.key)


if __name__ == "__main__":
    main()
