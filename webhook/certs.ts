/**
 * CA and serving certificates for the self-managed mode (node-forge for X.509, Node's crypto for
 * RSA-2048 key generation: some API servers reject Ed25519 serving certs). Pure apart from keygen.
 */
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import forge from 'node-forge';

export interface KeyPairPem {
  certPem: string;
  keyPem: string;
}

const DAY_MS = 24 * 60 * 60 * 1000;
/** Backdate notBefore so small clock skew between replicas and the API server does not matter. */
const BACKDATE_MS = 5 * 60 * 1000;

function newKeys(): { privateKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey; keyPem: string } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  const priv = forge.pki.privateKeyFromPem(privateKey) as forge.pki.rsa.PrivateKey;
  return { privateKey: priv, publicKey: forge.pki.setRsaPublicKey(priv.n, priv.e), keyPem: privateKey };
}

/** Signs with Node's native RSA (forge's pure-JS private-key operation is ~50x slower). */
function signCert(cert: forge.pki.Certificate, keyPem: string): void {
  const oid = forge.pki.oids.sha256WithRSAEncryption;
  cert.signatureOid = oid;
  (cert as unknown as { siginfo: { algorithmOid: string } }).siginfo.algorithmOid = oid;
  const tbs = (forge.pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 }).getTBSCertificate(cert);
  (cert as unknown as { tbsCertificate: forge.asn1.Asn1 }).tbsCertificate = tbs;
  const der = Buffer.from(forge.asn1.toDer(tbs).getBytes(), 'binary');
  cert.signature = sign('sha256', der, keyPem).toString('binary');
}

/**
 * Names as UTF8String (RFC 5280's choice for new certificates). forge's default, PrintableString, cannot hold the
 * CA name's '@', and Go clients (kube-apiserver calling the webhook, kubelet probing it) reject such a certificate.
 */
const UTF8 = forge.asn1.Type.UTF8 as unknown as forge.asn1.Class;

/** forge writes CRLF; Secrets, bundles and comparisons use LF. */
function pem(s: string): string {
  return s.replace(/\r\n/g, '\n');
}

function serial(): string {
  const b = randomBytes(16);
  b[0] &= 0x7f; // positive
  return b.toString('hex');
}

export function generateCa(now: Date, validityDays: number, commonName = 'akto-agent-proxy-webhook-ca'): KeyPairPem {
  const keys = newKeys();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(now.getTime() - BACKDATE_MS);
  cert.validity.notAfter = new Date(now.getTime() + validityDays * DAY_MS);
  const subject = [{ name: 'commonName', value: `${commonName}@${Math.floor(now.getTime() / 1000)}`, valueTagClass: UTF8 }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  signCert(cert, keys.keyPem);
  return { certPem: pem(forge.pki.certificateToPem(cert)), keyPem: keys.keyPem };
}

export function issueServingCert(ca: KeyPairPem, dnsNames: string[], now: Date, validityDays: number): KeyPairPem {
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const keys = newKeys();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(now.getTime() - BACKDATE_MS);
  cert.validity.notAfter = new Date(Math.min(now.getTime() + validityDays * DAY_MS, caCert.validity.notAfter.getTime()));
  cert.setSubject([{ name: 'commonName', value: dnsNames[0], valueTagClass: UTF8 }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: dnsNames.map((value) => ({ type: 2, value })) },
  ]);
  signCert(cert, ca.keyPem);
  return { certPem: pem(forge.pki.certificateToPem(cert)), keyPem: keys.keyPem };
}

export function serviceDnsNames(service: string, namespace: string): string[] {
  return [`${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`, `${service}.${namespace}`, service];
}

export function splitPem(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)?.map((s) => pem(s) + '\n') ?? [];
}

export interface CertInfo {
  notBefore: Date;
  notAfter: Date;
  dnsNames: string[];
}

export function certInfo(pem: string): CertInfo {
  const cert = forge.pki.certificateFromPem(pem);
  const san = cert.getExtension('subjectAltName') as { altNames?: Array<{ type: number; value: string }> } | null;
  return {
    notBefore: cert.validity.notBefore,
    notAfter: cert.validity.notAfter,
    dnsNames: (san?.altNames ?? []).filter((a) => a.type === 2).map((a) => a.value),
  };
}

/** True once two thirds of the lifetime have passed (or the cert cannot be read). */
export function needsRenewal(pem: string, now: Date): boolean {
  try {
    const { notBefore, notAfter } = certInfo(pem);
    const life = notAfter.getTime() - notBefore.getTime();
    return now.getTime() >= notBefore.getTime() + (life * 2) / 3;
  } catch {
    return true;
  }
}

export function isExpired(pem: string, now: Date): boolean {
  try {
    return certInfo(pem).notAfter.getTime() <= now.getTime();
  } catch {
    return true;
  }
}

/** Whether `leafPem` is signed by one of the CAs in `bundlePem` (and is within its validity). */
export function verifiedBy(leafPem: string, bundlePem: string, now: Date = new Date()): boolean {
  let leaf: forge.pki.Certificate;
  try {
    leaf = forge.pki.certificateFromPem(leafPem);
  } catch {
    return false;
  }
  if (now < leaf.validity.notBefore || now > leaf.validity.notAfter) return false;
  for (const caPem of splitPem(bundlePem)) {
    try {
      const ca = forge.pki.certificateFromPem(caPem);
      if (ca.issued(leaf) && ca.verify(leaf)) return true;
    } catch {
      // an unreadable entry in the bundle verifies nothing
    }
  }
  return false;
}

/** Whether the key belongs to the certificate (so a half-written Secret is never served). */
export function keyMatches(certPem: string, keyPem: string): boolean {
  try {
    const cert = forge.pki.certificateFromPem(certPem);
    const key = forge.pki.privateKeyFromPem(keyPem);
    const pub = cert.publicKey as forge.pki.rsa.PublicKey;
    return pub.n.equals(key.n) && pub.e.equals(key.e);
  } catch {
    return false;
  }
}
