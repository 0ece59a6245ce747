/**
 * The far ends of `make e2e`'s sample agent, run in the cluster from the fixtures image, each behind a Service:
 *
 *   node upstream.js stub    the stub inference endpoint (test/fixtures/stub-upstream: TGI + OpenAI routes) on :8000;
 *                            with STUB_AUTHORIZATION it answers 401 to any other Authorization, as a private endpoint does
 *   node upstream.js akto    the strict Akto ingestion receiver (test/fixtures/akto-receiver) on :8090;
 *                            AKTO_TOKEN is the token it accepts, FORBIDDEN lists strings no record may contain
 *
 * Both report what they received on GET :7001/received, as JSON, for the scenario to assert on.
 */
import http from 'node:http';
import { startAktoReceiver } from '../../fixtures/akto-receiver';
import { startStubUpstream } from '../../fixtures/stub-upstream';

function report(snapshot: () => unknown): void {
  http
    .createServer((req, res) => {
      if (req.url !== '/received') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(snapshot()));
    })
    .listen(7001, '0.0.0.0');
}

async function main(): Promise<void> {
  const role = process.argv[2];
  if (role === 'stub') {
    const stub = await startStubUpstream({ host: '0.0.0.0', port: 8000, authorization: process.env.STUB_AUTHORIZATION || undefined });
    report(() => stub.requests.map((r) => ({ method: r.method, path: r.path, headers: r.headers, body: r.body.toString('utf8') })));
    console.log(`stub upstream on ${stub.url}`);
  } else if (role === 'akto') {
    const forbidden = (process.env.FORBIDDEN ?? '').split(',').filter(Boolean);
    const receiver = await startAktoReceiver({ host: '0.0.0.0', port: 8090, token: process.env.AKTO_TOKEN, forbidden });
    report(() => ({ records: receiver.records, errors: receiver.errors, stats: receiver.stats }));
    console.log(`akto receiver on ${receiver.url}`);
  } else {
    throw new Error(`usage: upstream.js stub|akto (got ${role})`);
  }
  process.on('SIGTERM', () => process.exit(0));
}

main().catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});
