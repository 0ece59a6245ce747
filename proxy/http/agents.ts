import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { declare, type Env } from '../../common/env';

/** CA bundles trusted beside Node's roots for HTTPS upstreams, Akto, alerts, the classifier and rediss://. */
export const CA_ENV = {
  sslCertFile: declare.string('SSL_CERT_FILE', 'a PEM CA bundle trusted for HTTPS upstreams (beside Node\'s roots and the system bundle)'),
  nodeExtraCaCerts: declare.string('NODE_EXTRA_CA_CERTS', 'a PEM CA bundle, trusted likewise'),
};

/** System CA bundles, looked up in the usual Debian/Alpine/RHEL places. */
const SYSTEM_CA_FILES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];

/**
 * Node trusts only its bundled Mozilla roots; PrivateLink endpoints and corporate proxies are
 * often signed by a CA in the system store or NODE_EXTRA_CA_CERTS. Trust all three.
 */
export function trustedCAs(env: Env): string[] {
  const cas = [...tls.rootCertificates];
  const files = [CA_ENV.sslCertFile.read(env), ...SYSTEM_CA_FILES, CA_ENV.nodeExtraCaCerts.read(env)];
  for (const file of files) {
    if (!file) continue;
    try {
      cas.push(fs.readFileSync(file, 'utf8'));
    } catch {
      // absent bundles are normal: each distribution keeps one of them
    }
  }
  return cas;
}

/** One keep-alive agent per upstream so connections are reused across requests. */
export function createUpstreamAgent(upstream: URL, env: Env): http.Agent {
  const options = { keepAlive: true, keepAliveMsecs: 1000, maxSockets: 256, maxFreeSockets: 64, scheduling: 'lifo' as const };
  if (upstream.protocol === 'https:') return new https.Agent({ ...options, ca: trustedCAs(env) });
  return new http.Agent(options);
}
