import forge from 'node-forge';
import { generateCa, issueServingCert, serviceDnsNames } from '../../../webhook/certs';

// Go's crypto/x509 (kube-apiserver calling the webhook, kubelet probing it) refuses a certificate whose names hold
// a PrintableString with a character outside X.680's PrintableString alphabet: "x509: invalid RDNSequence: invalid
// attribute value: invalid PrintableString". Node/OpenSSL accept it, so only an encoding check catches it here.
const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

function printableStrings(node: forge.asn1.Asn1, out: string[] = []): string[] {
  if (node.tagClass === forge.asn1.Class.UNIVERSAL && node.type === forge.asn1.Type.PRINTABLESTRING) out.push(node.value as string);
  if (Array.isArray(node.value)) for (const child of node.value) printableStrings(child, out);
  return out;
}

function derOf(pem: string): forge.asn1.Asn1 {
  return forge.asn1.fromDer(forge.pem.decode(pem)[0].body);
}

describe('self-managed certificates parse in Go clients', () => {
  test('every PrintableString in the CA and the serving certificate (subject and issuer) is valid X.680', () => {
    const now = new Date('2026-12-03T10:00:00Z');
    const ca = generateCa(now, 3650);
    const leaf = issueServingCert(ca, serviceDnsNames('akto-agent-proxy-webhook', 'akto-agent-proxy'), now, 30);
    for (const pem of [ca.certPem, leaf.certPem]) {
      for (const s of printableStrings(derOf(pem))) expect(s).toMatch(PRINTABLE);
    }
    // The leaf's issuer is byte-for-byte the CA's subject (Go builds chains on the raw names).
    const caCert = forge.pki.certificateFromPem(ca.certPem);
    const leafCert = forge.pki.certificateFromPem(leaf.certPem);
    expect(caCert.issued(leafCert)).toBe(true);
    expect(leafCert.issuer.getField('CN').value).toBe(caCert.subject.getField('CN').value);
  });
});
